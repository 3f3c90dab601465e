"""Models: models.yaml records, the built-in model, and the manager that keeps models resident."""
