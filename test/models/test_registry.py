import pytest
from torch import nn

from ivif_ros.models import DEFAULT_MODEL, ModelError, create_model, list_models, register_model


def test_lists_both_architectures():
    assert {"fast", "seed"} <= set(list_models())
    assert DEFAULT_MODEL == "fast"


@pytest.mark.parametrize("name", ["fast", "seed"])
def test_create_has_contract_attributes(name):
    net = create_model(name, stride=8)
    assert isinstance(net, nn.Module)
    assert net.window == 32 and net.stride == 8


def test_unknown_name_lists_choices():
    with pytest.raises(ModelError, match="fast"):
        create_model("nope")


def test_bad_kwargs_raise_model_error():
    with pytest.raises(ModelError, match="stride"):
        create_model("fast", stride=6)
    with pytest.raises(ModelError):
        create_model("seed", colour=True)


def test_duplicate_registration_refused():
    def fast():  # same name as the shipped entrypoint
        return nn.Identity()

    with pytest.raises(ModelError, match="already registered"):
        register_model(fast)
