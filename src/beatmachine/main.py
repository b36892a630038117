"""ASGI entry point for uvicorn: `beatmachine.main:app`."""

from beatmachine.app import create_app

app = create_app()
