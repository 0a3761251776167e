"""Schemathesis over the notify API, as a real process, with every role (issue 8, "Proof").

The process reads the session's shared topics, so it may plan deliveries for other tests'
notes: its mail server and SMS gateway are a closed port here, so nothing leaves.
"""

from switchboard_notify.config import NotifySettings
from switchboard_notify.main import create_app
from switchboard_platform.testing.api_fuzz import fuzz_module

service_process, test_no_5xx_and_every_answer_documented, test_refused_roles_too = fuzz_module(
    "notify",
    "switchboard_notify",
    create_app(NotifySettings(environment="test")),
    extra_env={
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": "9",
        "NOTIFY_SMS_URL": "http://127.0.0.1:9",
    },
)
