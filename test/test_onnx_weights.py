"""``model.init_from: model.onnx``: an exported model's weights back in the torch network.

The tiny default network, with BatchNorm statistics made far from the
identity so that folding them changes the weights, is exported by the
project's own export code (optimised: BatchNorm folded; unoptimised:
BatchNormalization nodes kept), read back into a fresh module and compared
with the original, in eval mode and in train mode after the module's freezing.
The bundled model, read into the default recipe's network, is compared with
ONNX Runtime running it, head by head.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from model_fixtures import make_card, make_model
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from mtdepth_ros.inference.model_file import read_card
from training.checkpoints import EXTRA_KEY
from training.export import (
    DeployNet,
    LoadedCheckpoint,
    check_report,
    compare_outputs,
    export_onnx,
    write_card,
)
from training.export_card import build_card
from training.init_from import BATCHNORM_FOLDED
from training.lineage import INIT_FROM_DATA
from training.depth_decoding import coding_from_config
from training.module import MultiTaskModule
from training.nets import build_model, get_spec
from training.onnx_weights import OnnxWeightsError, load_onnx_weights

TINY_NET = {'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}}
SIZE = (64, 128)  # network input of the exports (multiples of the default's 32)
TRAINED_ON = 'kitti at data/a (10 training frames)'
ATOL = 1e-4
REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / 'models' / 'mtdepth_default.onnx'
BUNDLED_RECIPE = REPO / 'training' / 'configs' / 'default_synth.yaml'
BUNDLED_SIZE = (192, 640)


def batchnorm(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def original_network() -> nn.Module:
    """The tiny default network in eval mode, its BatchNorm far from mean 0, variance 1."""
    torch.manual_seed(0)
    net = build_model('default', **TINY_NET)
    for norm in batchnorm(net):
        channels = norm.num_features
        norm.running_mean.copy_(torch.randn(channels) * 0.5)
        norm.running_var.copy_(torch.rand(channels) * 2.0 + 0.2)
        nn.init.uniform_(norm.weight, 0.5, 1.5)
        nn.init.normal_(norm.bias, std=0.3)
    return net.eval()


def export(net: nn.Module, path: Path, optimize: bool) -> Path:
    """``net`` exported as ``python -m training export`` writes it: graph, then card."""
    spec = get_spec('default')
    coding = coding_from_config(None)
    extra = {'config': {'recipe': 'tiny', 'model': {'net': 'default', 'net_args': TINY_NET}},
             'data': {'focal_length_px': 100.0, 'training_data': TRAINED_ON}}
    loaded = LoadedCheckpoint(net, spec, coding, {}, extra, global_step=0)
    export_onnx(DeployNet(net, spec, coding, 'normalized_log').eval(), SIZE, path, optimize)
    write_card(path, build_card(loaded, SIZE, 'normalized_log'))
    return path


@pytest.fixture(scope='module')
def original() -> nn.Module:
    return original_network()


@pytest.fixture(scope='module')
def exports(original: nn.Module,
            tmp_path_factory: pytest.TempPathFactory) -> Callable[[bool], Path]:
    """The original exported, optimised or not: each written once for the module's tests."""
    base = tmp_path_factory.mktemp('exports')

    def get(optimize: bool) -> Path:
        path = base / ('optimized.onnx' if optimize else 'unoptimized.onnx')
        return path if path.is_file() else export(original, path, optimize)

    return get


@pytest.fixture(scope='module', params=[True, False], ids=['optimized', 'unoptimized'])
def exported(request: pytest.FixtureRequest, exports: Callable[[bool], Path]) -> Path:
    return exports(request.param)


@pytest.fixture(scope='module')
def optimized(exports: Callable[[bool], Path]) -> Path:
    return exports(True)


def outputs(net: nn.Module, image: Tensor) -> dict[str, Tensor]:
    with torch.no_grad():
        return net(image)


def test_the_optimised_export_has_its_batchnorm_folded(optimized: Path) -> None:
    graph = onnx.load(str(optimized)).graph
    assert not [n for n in graph.node if n.op_type == 'BatchNormalization']
    first = next(n for n in graph.node if n.op_type == 'Conv')
    assert first.input[1] == 'net.encoder.stages.0.0.0.weight'
    assert len(first.input) == 3 and first.input[2] != 'net.encoder.stages.0.0.0.bias'


def test_a_module_started_from_an_export_computes_the_original_network(
        exported: Path, original: nn.Module) -> None:
    image = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    expected = outputs(original, image)
    module = MultiTaskModule('default', net_args=TINY_NET, init_from=str(exported))
    module.eval()
    for head, value in outputs(module.net, image).items():
        torch.testing.assert_close(value, expected[head], atol=ATOL, rtol=0, msg=head)
    module.train()  # as Lightning does: the network trains, its BatchNorm stays in eval
    assert module.net.training and not any(norm.training for norm in batchnorm(module.net))
    for head, value in outputs(module.net, image).items():
        torch.testing.assert_close(value, expected[head], atol=ATOL, rtol=0, msg=head)


def test_every_batchnorm_stays_in_eval_through_training_and_still_learns(
        optimized: Path) -> None:
    module = MultiTaskModule('default', net_args=TINY_NET, init_from=str(optimized))
    module.train()
    module.net.train()  # Lightning restores each submodule's mode after validation
    module.on_train_batch_start({}, 0)
    norms = batchnorm(module.net)
    assert norms and not any(norm.training for norm in norms)
    before = [norm.running_mean.clone() for norm in norms]
    result = module.net(torch.randn(2, 3, *SIZE))
    sum(value.square().mean() for value in result.values()).backward()
    assert all(torch.equal(norm.running_mean, mean) for norm, mean in zip(norms, before))
    assert all(norm.weight.grad is not None and norm.bias.grad is not None for norm in norms)


def test_the_runs_checkpoints_carry_the_lineage_and_the_frozen_batchnorm(
        optimized: Path, tmp_path: Path) -> None:
    module = MultiTaskModule('default', net_args=TINY_NET, init_from=str(optimized))
    checkpoint: dict[str, Any] = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint[EXTRA_KEY][INIT_FROM_DATA] == TRAINED_ON
    assert checkpoint[EXTRA_KEY][BATCHNORM_FOLDED] is True
    # A later stage started from that run's checkpoint keeps the statistics frozen too.
    checkpoint['state_dict'] = {f'net.{k}': v for k, v in module.net.state_dict().items()}
    path = tmp_path / 'stage.ckpt'
    torch.save(checkpoint, path)
    later = MultiTaskModule('default', net_args=TINY_NET, init_from=str(path))
    later.train()
    assert later.batchnorm_folded and not any(norm.training for norm in batchnorm(later.net))


def test_an_export_of_another_network_is_refused(optimized: Path) -> None:
    with pytest.raises(OnnxWeightsError, match="export of network 'default'.*builds 'multidepth'"):
        MultiTaskModule('multidepth', net_args=dict(get_spec('multidepth').tiny),
                        init_from=str(optimized))


def test_an_export_of_other_sizes_is_refused_naming_the_layers(optimized: Path) -> None:
    with pytest.raises(OnnxWeightsError, match=r"'task_heads\.segmentation\.out\.weight' is "
                                               r'\(5, 8, 1, 1\) in the network, \(19, 8, 1, 1\)'):
        MultiTaskModule('default', net_args={**TINY_NET, 'num_classes': 5},
                        init_from=str(optimized))


def test_a_graph_without_network_weights_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'constant.onnx'
    onnx.save(make_model(make_card()), str(path))  # a valid model and card, no network
    with pytest.raises(OnnxWeightsError, match=r'no initializer named net\.<parameter>'):
        MultiTaskModule('default', net_args=TINY_NET, init_from=str(path))


def corrupt(path: Path, out: Path, drop: str = '', add: str = '') -> Path:
    """The export at ``path`` with initializer ``drop`` removed and ``add`` added."""
    model = onnx.load(str(path))
    kept = [init for init in model.graph.initializer if init.name != drop]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    if add:
        model.graph.initializer.append(numpy_helper.from_array(torch.zeros(3).numpy(), add))
    onnx.save(model, str(out))
    return out


@pytest.mark.parametrize(('drop', 'add', 'message'), [
    ('net.task_heads.depth.out.weight', '',
     r"weight 'net\.task_heads\.depth\.out\.weight' is no stored convolution weight.*"
     r'1 network entries not in the graph: task_heads\.depth\.out\.weight'),
    ('', 'net.decoder.extra.weight',
     r"net\.decoder\.extra\.weight has no place in the network \(no 'decoder\.extra\.weight'\)"),
], ids=['missing', 'unused'])
def test_a_corrupt_export_is_refused_naming_the_initializers(
        optimized: Path, tmp_path: Path, drop: str, add: str, message: str) -> None:
    path = corrupt(optimized, tmp_path / 'corrupt.onnx', drop, add)
    with pytest.raises(OnnxWeightsError, match=message):
        MultiTaskModule('default', net_args=TINY_NET, init_from=str(path))



def with_head_logits(model: Any, heads: tuple[str, ...]) -> Any:
    """The export with each head's upsampled raw output added as a graph output, named by head."""
    conv_outputs = {n.input[1]: n.output[0] for n in model.graph.node if n.op_type == 'Conv'}
    for head in heads:
        logits = conv_outputs[f'net.task_heads.{head}.out.weight']
        resize = next(n for n in model.graph.node if n.op_type == 'Resize' and logits in n.input)
        model.graph.node.append(helper.make_node('Identity', [resize.output[0]], [f'raw_{head}']))
        model.graph.output.append(
            helper.make_tensor_value_info(f'raw_{head}', TensorProto.FLOAT, None))
    return model


@pytest.mark.skipif(not BUNDLED.is_file(), reason='the bundled model is not in this checkout')
def test_the_bundled_model_reads_back_into_the_default_recipe() -> None:
    """The default recipe, with the network arguments the bundled model's card records (its
    layout branch), starts from it: the raw logits and every exported output agree."""
    card = read_card(BUNDLED)
    model_config = yaml.safe_load(BUNDLED_RECIPE.read_text())['model']
    model_config['net_args'] = card.config['model']['net_args']
    module = MultiTaskModule(**{**model_config, 'init_from': str(BUNDLED)}).eval()
    heads = ('intervals', 'segmentation')  # depth's raw head is mixed with the layout after
    image = torch.randn(1, 3, *BUNDLED_SIZE, generator=torch.Generator().manual_seed(0))
    expected = outputs(module.net, image)
    graph = with_head_logits(onnx.load(str(BUNDLED)), heads)
    session = ort.InferenceSession(graph.SerializeToString(), providers=['CPUExecutionProvider'])
    actual = session.run([f'raw_{head}' for head in heads], {'image': image.numpy()})
    for head, value in zip(heads, actual):  # measured: at most 4.9e-5 (logits up to 11)
        torch.testing.assert_close(torch.from_numpy(value), expected[head], atol=ATOL, rtol=0,
                                   msg=head)
    assert card.depth_coding is not None
    deploy = DeployNet(module.net, get_spec('default'), card.depth_coding, 'normalized_log')
    assert check_report(compare_outputs(deploy.eval(), BUNDLED, BUNDLED_SIZE)) == []


CUE_NET = {**TINY_NET, 'segmentation_cue_width': 8}


def test_an_export_without_the_segmentation_cue_starts_the_network_with_it(
        optimized: Path, original: nn.Module) -> None:
    # the branch is new, the export predates it: it keeps its own (neutral) start
    image = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    expected = outputs(original, image)
    module = MultiTaskModule('default', net_args=CUE_NET, init_from=str(optimized)).eval()
    assert module.net.segmentation_cue is not None
    for head, value in outputs(module.net, image).items():
        torch.testing.assert_close(value, expected[head], atol=ATOL, rtol=0, msg=head)


def test_the_segmentation_cue_learns_from_its_zero_start(optimized: Path) -> None:
    module = MultiTaskModule('default', net_args=CUE_NET, init_from=str(optimized))
    net = module.net.train()
    cue = net.segmentation_cue
    before = {name: p.detach().clone() for name, p in cue.named_parameters()}
    optimizer = torch.optim.SGD(cue.parameters(), lr=0.1)
    image = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(2))
    for _ in range(2):  # the zero output layer moves first, then what feeds it
        optimizer.zero_grad()
        (net(image)['depth'] - 0.5).square().mean().backward()
        assert all(p.grad is None or p.grad.abs().sum() == 0
                   for p in net.task_heads['segmentation'].parameters())  # detached
        optimizer.step()
    changed = {name for name, p in cue.named_parameters() if not torch.equal(p, before[name])}
    assert changed == set(before)


def test_only_the_neutral_branch_may_be_missing_from_an_export(optimized: Path) -> None:
    net = build_model('default', **CUE_NET)
    net.starts_neutral = ()  # a network that does not say its new branch starts neutral
    with pytest.raises(OnnxWeightsError, match=r'network entries not in the graph: '
                                               r'segmentation_cue\.'):
        load_onnx_weights(optimized, net, 'default')
