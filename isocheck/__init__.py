"""The ``isocheck`` command: the composition root above ``server``, ``scheduler`` and
``verification`` (nothing in those packages imports it)."""
