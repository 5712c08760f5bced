"""Signed callbacks to the agents that posted live asks (docs/asks.md, "Callbacks")."""
