"""Persistence layer: SQLAlchemy models, the engine factory and Alembic migrations.

Nothing here imports Streamlit or the domain package; `infusion/` builds on it.
"""
