"""Search: the indexes that find contacts, relations, projects and e-mails

Revision ID: 0010
Revises: 0009

PostgreSQL: ``hub_fold(text)``, an IMMUTABLE SQL function that folds text (lower case, accents off:
"Café Zoë" → "cafe zoe"; search folds the typed text with it too, so both sides always agree): the
unaccent extension's C code where it can be had, else the same folding as ``hub.text.fold`` in plain
SQL (translate(), correct but some twenty times slower). And pg_trgm GIN
indexes on ``hub_fold(column)`` for every column search looks in, so ``hub_fold(name) LIKE '%oe%'``
(substring, case- and accent-insensitive) is answered from an index instead of a scan. pg_trgm is a
trusted extension (PostgreSQL 13+): the database owner may create it. Where it cannot be created the
indexes are left out and search still works, by scanning.

SQLite: nothing here. Its index came with migration 0014 (FTS5 trigram tables of the folded texts,
kept by triggers; that migration says why): until then search scanned there.
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Generated once from hub.text.fold over Latin-1, Latin Extended-A/B and Latin Extended Additional:
# each character that folds to one other character. A migration keeps the literal, never the code.
FOLD_FROM = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǢǣǦǧǨǩǪǫǬǭǮǯǰǴǵǸǹǺǻǼǽǾǿȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẛẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"
FOLD_TO = "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzsoouuaaiioouuuuuuuuuuaaaaææggkkooooʒʒjggnnaaææøøaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwysaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyy"
# Characters that fold to two.
FOLD_PAIRS = (("ß", "ss"), ("ẞ", "ss"), ("Ĳ", "ij"), ("ĳ", "ij"))

# (index, table, column): the same names as the Index declarations in hub.models.crm.
INDEXES = (
    ("ix_search_relation_name", "relation", "name"),
    ("ix_search_relation_city", "relation", "city"),
    ("ix_search_relation_coc", "relation", "coc_number"),
    ("ix_search_relation_vat", "relation", "vat_number"),
    ("ix_search_contact_name", "contact", "name"),
    ("ix_search_email_address", "email_address", "address_key"),
    ("ix_search_phone_e164", "phone_number", "e164"),
    ("ix_search_project_name", "project", "name"),
    ("ix_search_project_free_text_1", "project", "free_text_1"),
    ("ix_search_project_free_text_2", "project", "free_text_2"),
    ("ix_search_project_free_text_3", "project", "free_text_3"),
    ("ix_search_project_free_text_4", "project", "free_text_4"),
    ("ix_search_email_subject", "email", "subject"),
    ("ix_search_email_from_name", "email", "from_name"),
    ("ix_search_email_from_address", "email", "from_address"),
)


def _fold_sql() -> str:
    expression = f"translate($1, '{FOLD_FROM}', '{FOLD_TO}')"
    for source, target in FOLD_PAIRS:
        expression = f"replace({expression}, '{source}', '{target}')"
    return f"lower({expression})"


def _extension(bind: Any, name: str) -> str | None:
    """Create the extension if it is not there; the schema it lives in, or None if it cannot be had."""
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {name}")
    except DBAPIError as error:
        log.warning("search: the %s extension could not be created (%s)", name, error.orig)
        return None
    return str(bind.exec_driver_sql(f"SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = '{name}'").scalar())


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = _extension(bind, "unaccent")
    if schema is not None:
        # unaccent (C, a few microseconds a value) is declared STABLE because its rules file could be
        # edited; hub's own fold pins the dictionary, so the wrapper is IMMUTABLE and indexable.
        body = f"lower({schema}.unaccent('{schema}.unaccent'::regdictionary, $1))"
    else:
        # The same folding in plain SQL: correct, only slower (translate() over hundreds of characters).
        log.warning("search: without unaccent; folding accents with translate(), which is slower")
        body = _fold_sql()
    op.execute(
        "CREATE OR REPLACE FUNCTION hub_fold(text) RETURNS text "
        f"LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fold$ SELECT {body} $fold$"
    )
    if _extension(bind, "pg_trgm") is None:
        log.warning("search: searching without trigram indexes (by scanning)")
        return
    for name, table, column in INDEXES:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" USING gin (hub_fold("{column}") gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _table, _column in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    # pg_trgm and unaccent stay: other software in the database may use them; they hold no data of ours.
    op.execute("DROP FUNCTION IF EXISTS hub_fold(text)")
