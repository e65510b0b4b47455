"""Tortoise models, one module per concern; `MODEL_MODULES` is what Tortoise and aerich load."""
MODEL_MODULES = ["models.providers", "models.jobs", "models.audit", "models.ops", "aerich.models"]
