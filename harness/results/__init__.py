"""The results wing: the one declaration of every JSON file harness writes (pydantic models).

Producers build these types, the same declaration writes them, reads them back strictly and
publishes their JSON Schema; the report and the terminal render them. Imports only ``core``.
"""
