"""core.settings / core.config: the settings schema and what is derived from it."""
import dataclasses

import pytest

from ivif_ros.backends.choice import DetectorChoice
from ivif_ros.core.config import RUNTIME_FIELDS, FusionConfig
from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.settings import (
    coerce,
    describe_rule,
    parse_assignments,
    parse_value,
    runtime_fields,
    settings_of,
)

SCHEMA = settings_of(FusionConfig)


def test_every_field_has_a_setting_with_help():
    assert set(SCHEMA) == {f.name for f in dataclasses.fields(FusionConfig)}
    assert all(meta.help for meta in SCHEMA.values())


def test_defaults_are_valid_and_runtime_set_is_derived():
    FusionConfig().validate()
    DetectorChoice().validate()
    assert runtime_fields(FusionConfig) == RUNTIME_FIELDS
    assert {"mode", "thermal_percentiles", "smoothing_eps", "output_stretch"} <= RUNTIME_FIELDS
    assert not {"max_pixels", "size_tolerance", "seed_stride", "retinex_sigma"} & RUNTIME_FIELDS


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(thermal_percentiles=(5.0,)), "thermal_percentiles must have 2 elements"),
        (dict(thermal_percentiles=(5.0, 50.0, 90.0)), "thermal_percentiles must have 2 elements"),
        (dict(thermal_percentiles=(99.0, 5.0)), "thermal_percentiles must be strictly increasing"),
        (dict(thermal_percentiles=(float("nan"), 99.0)), "thermal_percentiles must be finite"),
        (dict(thermal_percentiles=(0.5, 101.0)), r"thermal_percentiles must be in \[0, 100\]"),
        (dict(thermal_percentiles="0.5,99.5"), "thermal_percentiles must be a list"),
        (dict(thermal_percentiles=5.0), "thermal_percentiles must be a list"),
        (dict(visible_enhance=float("nan")), "visible_enhance must be finite"),
        (dict(detail_gain=float("inf")), "detail_gain must be finite"),
        (dict(visible_enhance="0.5"), "visible_enhance must be a number"),
        (dict(visible_enhance=True), "visible_enhance must be a number"),
        (dict(smoothing_radius=2.5), "smoothing_radius must be an integer"),
        (dict(smoothing_radius=-1), r"smoothing_radius must be in \[0, 256\]"),
        (dict(smoothing_eps=0.0), r"smoothing_eps must be in \(0, 1\]"),
        (dict(output_stretch=50.0), r"output_stretch must be in \[0, 50\)"),
        (dict(target_contrast=1.0), r"target_contrast must be in \(1, 1000\]"),
        (dict(seed_stride=3), "seed_stride must be one of 0, 1, 2, 4, 8, 16, 32"),
        (dict(seed_retinex=1), "seed_retinex must be true or false"),
        (dict(mode="magic"), "mode must be one of default, seed"),
        (dict(max_pixels=10), r"max_pixels must be in \[64, "),
    ],
)
def test_validate_names_the_bad_value(changes, match):
    config = FusionConfig(**changes)
    with pytest.raises(FusionInputError, match=match):
        config.validate()


def test_bounds_themselves_follow_the_schema():
    FusionConfig(smoothing_eps=1.0, output_stretch=49.99, target_contrast=1.0001, thermal_percentiles=(0.0, 100.0),
                 smoothing_radius=0, seed_stride=32).validate()
    FusionConfig(detector_scale=1).validate()
    assert coerce("detector_scale", SCHEMA["detector_scale"], 1) == 1.0  # integers are accepted as floats
    assert coerce("smoothing_radius", SCHEMA["smoothing_radius"], 8.0) == 8  # integral floats as integers
    assert coerce("thermal_percentiles", SCHEMA["thermal_percentiles"], [1, 99]) == (1.0, 99.0)


def test_detector_choice_is_checked():
    with pytest.raises(FusionInputError, match="backend must be one of auto, torch"):
        DetectorChoice(backend="magic").validate()
    with pytest.raises(FusionInputError, match="device must be auto, cpu, cuda or cuda:N"):
        DetectorChoice(device="gpu0").validate()
    DetectorChoice(device="cuda:1").validate()
    assert DetectorChoice().model_spec("default") is None and DetectorChoice().model_spec("seed") == "seed"
    assert DetectorChoice().for_mode("seed", "x.safetensors").seed_model == "x.safetensors"
    assert DetectorChoice().for_mode("default", "x.safetensors").model == "x.safetensors"


class TestCommandLineSet:
    def test_values_are_typed_by_the_schema(self):
        values = parse_assignments(FusionConfig, [
            "detector_scale=0.25", "smoothing_radius=4", "seed_retinex=false", "thermal_percentiles=1,99",
            "mode=seed", "output_stretch=2",
        ])
        assert values == {"detector_scale": 0.25, "smoothing_radius": 4, "seed_retinex": False,
                          "thermal_percentiles": (1.0, 99.0), "mode": "seed", "output_stretch": 2.0}
        assert parse_value("thermal_percentiles", SCHEMA["thermal_percentiles"], "[0.5, 99.5]") == (0.5, 99.5)

    @pytest.mark.parametrize(
        "item,match",
        [
            ("no_such_field=1", "unknown setting 'no_such_field'"),
            ("detector_scale", "KEY=VALUE"),
            ("detector_scale=99", r"detector_scale must be in \[0.05, 2\]"),
            ("detector_scale=fast", "cannot read 'fast' as float"),
            ("smoothing_radius=2.5", "cannot read '2.5' as int"),
            ("thermal_percentiles=5", "must have 2 elements"),
            ("seed_retinex=maybe", "cannot read 'maybe' as bool"),
            ("visible_enhance=nan", "visible_enhance must be finite"),
        ],
    )
    def test_bad_items_are_named(self, item, match):
        with pytest.raises(FusionInputError, match=match):
            parse_assignments(FusionConfig, [item])


def test_rule_text():
    assert describe_rule(SCHEMA["thermal_percentiles"]) == "2 numbers, increasing, each in [0, 100]"
    assert describe_rule(SCHEMA["smoothing_eps"]) == "(0, 1]"
    assert describe_rule(SCHEMA["mode"]) == "one of default, seed"
    assert describe_rule(SCHEMA["seed_retinex"]) == ""
    assert SCHEMA["seed_stride"].bounds() == (0, 32)
    assert SCHEMA["output_stretch"].bounds() == (0.0, 50.0)
