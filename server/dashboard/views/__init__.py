"""The dashboard's pages, one module per page (their URLs: :mod:`server.dashboard.blueprint`)."""
