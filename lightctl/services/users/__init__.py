"""Users, roles, sessions and API tokens (issue 16): who may press the one switch.

``passwords`` (Argon2id), ``throttle`` (login lockout), ``secrets`` (random values and their
digests), ``accounts`` (what an administrator does), ``auth`` (sign-in and who a request is),
``audit`` (what an audit row says of a request). Who may do what is ``lightctl.services.access``.
"""
