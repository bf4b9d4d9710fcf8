"""Why Entra said no: the AADSTS catalogue (data), the diagnosis, the paste parser (no Flask)."""
