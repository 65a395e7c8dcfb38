"""The console block: who may use the console's server and where it is."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from qops.console.settings import DEFAULT_CONSOLE_USER, ConsoleSettings


class QopsConsole(Block):
    """The console server's credentials and addresses; mirrors
    :class:`qops.console.settings.ConsoleSettings`.

    ``qops api serve --block NAME`` serves with these credentials; a flow links its
    artifacts to ``console_url``.
    """

    _block_type_name = "qops Console"
    _block_type_slug = "qops-console"
    _description = "Credentials and public address of the qops console (qops api serve)."

    token: SecretStr | None = Field(
        default=None, description="Bearer token every request must carry."
    )
    user: str = Field(
        default=DEFAULT_CONSOLE_USER, min_length=1, description="HTTP Basic user name."
    )
    password: SecretStr | None = Field(
        default=None, description="HTTP Basic password (browsers prompt for it)."
    )
    console_url: str | None = Field(
        default=None, description="Public base URL of the console, for links to its pages."
    )
    prefect_ui_url: str | None = Field(
        default=None, description="Base URL of the Prefect UI; default PREFECT_API_URL - /api."
    )

    def to_settings(self) -> ConsoleSettings:
        """Return the settings this block describes (the URLs checked).

        Raises:
            pydantic.ValidationError: A URL is not an http(s) URL or holds credentials.
        """
        return ConsoleSettings(
            console_token=self.token,
            console_user=self.user,
            console_password=self.password,
            console_url=self.console_url,
            prefect_ui_url=self.prefect_ui_url,
        )
