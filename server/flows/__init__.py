"""Use cases that span domain packages (enrol a person, release and purge): the layer above
the domain services, so the domain packages never import each other both ways.

views / API / CLI / scheduler jobs -> flows -> domain services -> models -> core.
"""
