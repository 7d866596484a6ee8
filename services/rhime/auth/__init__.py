"""auth: sign up, sign in, sign out, current user; issues the access token."""
