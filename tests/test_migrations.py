"""Migrations build exactly the models' schema, and go down and up again, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from server import migrate
from server.core.db import make_engine
from server.models import Base


def _pending(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_matches_models_then_downgrade_and_upgrade_again(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(db_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert _pending(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables

    migrate.downgrade(db_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(db_url)
    assert _pending(engine) == []
    engine.dispose()
