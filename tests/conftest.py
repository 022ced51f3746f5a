"""Shared fixtures: the session-scoped tiny random BERT bundle lives in conftest_models."""

pytest_plugins = ["conftest_models", "conftest_pg"]
