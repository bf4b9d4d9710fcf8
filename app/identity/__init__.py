"""Sign-in with Entra ID through MSAL: clients, flows, ID tokens, who signed in, roles."""
