"""RAY_ADDRESS: the Ray dashboard's address, checked at start-up with a sentence naming it."""

from __future__ import annotations

import pytest

from r1studio.env import EnvError, check_ray_address


def test_it_reads_the_dashboard_address_without_a_trailing_slash() -> None:
    assert check_ray_address("RAY_ADDRESS", "http://ray-head:8265/") == "http://ray-head:8265"
    assert check_ray_address("RAY_ADDRESS", "https://ray.example.org") == "https://ray.example.org"


def test_it_reads_unset_as_no_cluster() -> None:
    assert check_ray_address("RAY_ADDRESS", "") == ""


@pytest.mark.parametrize(
    "value", ["ray-head:8265", "ray://ray-head:10001", "http://:8265", "http://ray-head:port"]
)
def test_it_refuses_what_is_not_a_dashboard_address(value: str) -> None:
    with pytest.raises(EnvError) as error:
        check_ray_address("RAY_ADDRESS", value)

    assert str(error.value).startswith("RAY_ADDRESS: expected the Ray dashboard's address")
