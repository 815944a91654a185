"""The registry's tables: users, blueprints, skillsets with abilities/resources/prompts, OAuth
connections, MCP server integrations.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
        schema="registry",
    )
    op.create_table(
        "blueprints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_blueprints_owner_page",
        "blueprints",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "oauth_connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("scopes", _jsonb(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("authorization_url", sa.Text(), nullable=True),
        sa.Column("token_url", sa.Text(), nullable=True),
        sa.Column("userinfo_url", sa.Text(), nullable=True),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_oauth_connections_owner_page",
        "oauth_connections",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "skillsets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("blueprint_id", sa.String(length=64), nullable=True),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["blueprint_id"], ["registry.blueprints.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_skillsets_owner_page",
        "skillsets",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "abilities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("skillset_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema", _jsonb(), nullable=False),
        sa.Column("output_schema", _jsonb(), nullable=True),
        sa.Column("annotations", _jsonb(), nullable=True),
        sa.Column("handler", _jsonb(), nullable=False),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["registry.skillsets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("skillset_id", "name", name="uq_abilities_skillset_name"),
        schema="registry",
    )
    op.create_index(
        "ix_abilities_skillset_page",
        "abilities",
        ["skillset_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "integrations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("skillset_id", sa.String(length=64), nullable=False),
        sa.Column("blueprint_id", sa.String(length=64), nullable=True),
        sa.Column("oauth_connection_id", sa.String(length=64), nullable=True),
        sa.Column("oauth_generation", sa.Integer(), nullable=False),
        sa.Column("session_mode", sa.String(length=16), nullable=False),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["blueprint_id"], ["registry.blueprints.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["oauth_connection_id"], ["registry.oauth_connections.id"], ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["registry.skillsets.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_integrations_meta",
        "integrations",
        ["meta"],
        unique=False,
        schema="registry",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_integrations_owner_page",
        "integrations",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("skillset_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("arguments", _jsonb(), nullable=False),
        sa.Column("messages", _jsonb(), nullable=False),
        sa.Column("handler", _jsonb(), nullable=True),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["registry.skillsets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("skillset_id", "name", name="uq_prompts_skillset_name"),
        schema="registry",
    )
    op.create_index(
        "ix_prompts_skillset_page",
        "prompts",
        ["skillset_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("skillset_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("uri_template", sa.Text(), nullable=True),
        sa.Column("mime_type", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("blob", sa.Text(), nullable=True),
        sa.Column("handler", _jsonb(), nullable=True),
        sa.Column("annotations", _jsonb(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["registry.skillsets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_resources_skillset_page",
        "resources",
        ["skillset_id", "created_at", "id"],
        unique=False,
        schema="registry",
    )
    op.create_index(
        "uq_resources_skillset_uri",
        "resources",
        ["skillset_id", "uri"],
        unique=True,
        schema="registry",
        postgresql_where=sa.text("uri IS NOT NULL"),
    )
    op.create_index(
        "uq_resources_skillset_uri_template",
        "resources",
        ["skillset_id", "uri_template"],
        unique=True,
        schema="registry",
        postgresql_where=sa.text("uri_template IS NOT NULL"),
    )


def downgrade() -> None:
    for table in (
        "resources",
        "prompts",
        "integrations",
        "abilities",
        "skillsets",
        "oauth_connections",
        "blueprints",
        "users",
    ):
        op.drop_table(table, schema="registry")
