"""IAM enforced in the emulator: moto's server with its access control on, plus what it lacks.

See tests/test_iam.py for what is evaluated by moto, what by `evaluate`, and what by neither.
"""
