"""The processes and their command lines: preparing a start (migrations, demo pairs, the admin user), production's
refusals, the supervisor of `run_exchange`, and the embedded PostgreSQL and Redis of a machine without any."""
