"""Prefect flows that compose the tasks; ``prefect.yaml`` declares their deployments."""
