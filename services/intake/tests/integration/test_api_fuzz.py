"""Schemathesis over the intake API, as a real process, with every role (issue 8, "Proof")."""

from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app
from switchboard_platform.testing.api_fuzz import fuzz_module

service_process, test_no_5xx_and_every_answer_documented, test_refused_roles_too = fuzz_module(
    "intake", "switchboard_intake", create_app(IntakeSettings(environment="test"))
)
