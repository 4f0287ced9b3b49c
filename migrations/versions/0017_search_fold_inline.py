"""Search: PostgreSQL's ``hub_fold`` costs a tenth of what it did (the same values)

Revision ID: 0017
Revises: 0016

PostgreSQL only. Migration 0010's ``hub_fold(text)`` is a SQL function declared IMMUTABLE (so it can
be indexed) around unaccent, which its extension declares STABLE. PostgreSQL inlines a SQL function
into the query that calls it only if its body is no more volatile than the function says it is, so
this one never was: every call went through the SQL-function executor, about 1 µs, where the folding
itself costs a few dozen ns. Search calls it on every row its trigram indexes propose (the bitmap
heap scan re-checks ``hub_fold(column) LIKE '%text%'`` on each) and three times on every row it
ranks: a common word ("bakker", in one name of eleven) spent most of its time there.

Here ``hub_fold`` gets a body PostgreSQL inlines, with the same result, so the indexes stay valid
(nothing is re-indexed; the values are those of the very same C function):

- where the migration may create C functions (a superuser): ``hub_unaccent(regdictionary, text)``,
  unaccent's own C function (the same library and symbol as the extension's
  ``unaccent(regdictionary, text)``) declared IMMUTABLE, and ``hub_fold`` = ``lower(hub_unaccent(…))``
  in SQL, which is then inlined: folding costs what unaccent's C code costs;
- else: ``hub_fold`` in PL/pgSQL, whose single RETURN PostgreSQL evaluates as a cached simple
  expression: about a third of the SQL-function executor's cost;
- where 0010 had no unaccent (its ``translate()`` body, which is immutable and so already inlined):
  nothing.

Measured on 30,000 contacts (a sequential scan folding each name): 1.14 → 0.21 µs a row with the C
declaration, 0.49 µs with PL/pgSQL (``lower(name)`` alone: 0.19 µs).

A dump of the database restored by a role that may not create C functions fails to create
``hub_unaccent`` (and then the search indexes): restore as a superuser, or migrate down to 0016
(Alembic's ``downgrade 0016``) before dumping and up again after restoring.
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _fold(bind: Any) -> tuple[str, str] | None:
    """hub_fold's schema and the unaccent extension's, when hub_fold folds with unaccent (0010)."""
    row = bind.exec_driver_sql(
        "SELECT p.pronamespace::regnamespace::text, e.extnamespace::regnamespace::text "
        "FROM pg_proc p, pg_extension e WHERE p.proname = 'hub_fold' AND e.extname = 'unaccent' "
        "AND strpos(p.prosrc, 'unaccent(') > 0"
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))


def _declare_c(bind: Any, schema: str, unaccent: str) -> bool:
    """Declare unaccent's C function IMMUTABLE as ``hub_unaccent``; False where this role may not."""
    library, symbol = bind.exec_driver_sql(
        f"SELECT probin, prosrc FROM pg_proc WHERE oid = '{unaccent}.unaccent(regdictionary, text)'::regprocedure"
    ).one()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(
                f"CREATE OR REPLACE FUNCTION {schema}.hub_unaccent(regdictionary, text) RETURNS text "
                f"LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS '{library}', '{symbol}'"
            )
    except DBAPIError as error:
        log.info("search: hub_fold in PL/pgSQL (C functions need a superuser: %s)", error.orig)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    found = _fold(bind)
    if found is None:
        return
    schema, unaccent = found
    dictionary = f"'{unaccent}.unaccent'::regdictionary"
    if _declare_c(bind, schema, unaccent):
        # Schema-qualified: the body is inlined into whatever calls it, under any search_path.
        op.execute(
            "CREATE OR REPLACE FUNCTION hub_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
            f"AS $fold$ SELECT lower({schema}.hub_unaccent({dictionary}, $1)) $fold$"
        )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION hub_fold(text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE "
            f"AS $fold$ BEGIN RETURN lower({unaccent}.unaccent({dictionary}, $1)); END $fold$"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    found = _fold(bind)
    if found is not None:
        schema, unaccent = found
        # 0010's body; hub_unaccent goes after nothing calls it any more.
        op.execute(
            "CREATE OR REPLACE FUNCTION hub_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
            f"AS $fold$ SELECT lower({unaccent}.unaccent('{unaccent}.unaccent'::regdictionary, $1)) $fold$"
        )
        op.execute(f"DROP FUNCTION IF EXISTS {schema}.hub_unaccent(regdictionary, text)")
