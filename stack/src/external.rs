//! A user's real stack, from URLs given as flags or environment variables (stub).
