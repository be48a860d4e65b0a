import pytest

# The support modules import each other: have their asserts rewritten whoever imports them first
# (tests/conftest.py registers the fixture modules among them as plugins).
pytest.register_assert_rewrite("tests.support")
