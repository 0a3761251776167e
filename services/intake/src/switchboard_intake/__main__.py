"""Start the intake service: `python -m switchboard_intake` (the image runs the same)."""

import uvicorn

from switchboard_platform.logs import configure_logging

from .config import IntakeSettings
from .main import create_app


def main() -> None:
    """Serve the intake API until SIGTERM."""
    settings = IntakeSettings()
    configure_logging("intake")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
