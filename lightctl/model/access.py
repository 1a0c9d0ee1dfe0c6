"""The ``access:`` section: how long a sign-in lasts, when repeated failures lock a sign-in out,
and the cost of the password hash. Who may do what is not configuration: it is the one table in
``lightctl.services.access``."""

from __future__ import annotations

from pydantic import Field

from lightctl.model.installation import Frozen


class PasswordHashSettings(Frozen):
    """Argon2id parameters. A stored hash made with other parameters is replaced by one made with
    these the next time its user signs in. The defaults are RFC 9106's second recommended
    profile (argon2-cffi's own defaults): about 150 ms of one core per hash on the centre's
    2-core machine."""

    time_cost: int = Field(default=3, ge=1, le=20, description="passes over the memory")
    memory_kib: int = Field(default=65_536, ge=8, le=4_194_304, description="memory per hash, KiB")
    parallelism: int = Field(default=4, ge=1, le=16, description="lanes (threads) per hash")


class AccessSettings(Frozen):
    session_idle_minutes: float = Field(
        default=60, gt=0, le=24 * 60, description="a session unused this long ends (the console signs in again)"
    )
    session_absolute_hours: float = Field(
        default=12, gt=0, le=24 * 31, description="a session ends this long after sign-in however much it is used"
    )
    failures_per_user: int = Field(
        default=5, ge=1, le=1000, description="failed sign-ins for one user name before it is locked out"
    )
    failures_per_address: int = Field(
        default=20, ge=1, le=10_000, description="failed sign-ins from one address (any user names) before it is locked out"
    )
    lockout_first_s: float = Field(default=60, gt=0, le=86_400, description="the first lockout; each next one doubles")
    lockout_max_s: float = Field(default=3600, gt=0, le=7 * 86_400, description="the longest lockout")
    password_min_length: int = Field(default=12, ge=8, le=128)
    token_days: int | None = Field(
        default=365, ge=1, le=3650, description="API tokens expire after this many days unless created with another; null: never"
    )
    password_hash: PasswordHashSettings = PasswordHashSettings()
