"""The mobile web app served at ``/app/`` (issue 14): a static shell built only on /api/v1."""
