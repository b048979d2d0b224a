"""Support: small helpers every stage may use (bounded parsing, atomic files, the heartbeat
thread, kill points for tests, HTML sanitising, the words and cells screens show, slugs).
Nothing here imports a stage."""
