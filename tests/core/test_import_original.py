"""The importer, tested on state dicts built to the original release's key layout."""
import re

import pytest
import torch

from pixelplayer import import_original
from pixelplayer.checkpoint import CheckpointError
from pixelplayer.config import FULL
from pixelplayer import checkpoint
from pixelplayer.model import PixelPlayer


def _original_layout_dicts(drop_batches_tracked=True):
    """Three plain state dicts named like the reference (features.*, fc.*, bn0.*, unet_block.*,
    scale/bias), filled with random values, without our `net_*` prefixes."""
    torch.manual_seed(0)
    ours = PixelPlayer(FULL).state_dict()
    parts = {"sound": {}, "frame": {}, "synth": {}}
    for key, value in ours.items():
        if drop_batches_tracked and key.endswith("num_batches_tracked"):
            continue
        if key in checkpoint.OPTIONAL_STATE:  # ours only: the reference has no such entry
            continue
        prefix, rest = key.split(".", 1)
        part = {"net_sound": "sound", "net_frame": "frame", "net_synth": "synth"}[prefix]
        fill = torch.rand_like if "running_var" in rest else torch.randn_like
        parts[part][rest] = (fill(value.float()) * 0.5 + 0.5 * ("running_var" in rest)).to(value.dtype)
    return parts


def test_reference_layout_facts():
    parts = _original_layout_dicts()
    sound, frame, synth = parts["sound"], parts["frame"], parts["synth"]
    assert sound["unet_block.model.0.weight"].shape == (64, 1, 4, 4)
    assert sound["unet_block.model.4.weight"].shape == (32, 128, 3, 3)
    assert "unet_block.model.4.bias" in sound
    assert any(k.startswith("unet_block.model.1.model.3.model.") for k in sound)
    assert frame["fc.weight"].shape == (32, 512, 3, 3)
    assert all(re.match(r"(features\.[0-7]\.|fc\.)", k) for k in frame)
    assert synth["scale"].shape == (32,) and synth["bias"].shape == (1,)


@pytest.mark.parametrize("drop", [True, False])
def test_import_maps_every_key_and_matches(tmp_path, drop):
    parts = _original_layout_dicts(drop)
    paths = {}
    for name, state in parts.items():
        paths[name] = tmp_path / import_original.FILENAMES[name]
        torch.save({"module." + k: v for k, v in state.items()} if name == "frame" else state,
                   paths[name])
    model = import_original.import_original(paths["sound"], paths["frame"], paths["synth"])
    assert model.config == FULL
    reference = PixelPlayer(FULL).eval()
    merged = {f"net_{'synth' if n == 'synth' else n}.{k}": v
              for n, s in parts.items() for k, v in s.items()}
    reference.load_state_dict(merged, strict=False)
    torch.manual_seed(1)
    mag = torch.rand(1, 512, 128)
    frames = torch.randn(1, 3, 1, 224, 224)
    with torch.no_grad():
        snd = model.audio_features(mag)
        assert torch.equal(snd, reference.audio_features(mag))
        pix = model.pixel_features(frames)
        assert torch.equal(pix, reference.pixel_features(frames))
        assert torch.equal(model.pixel_masks(pix, snd), reference.pixel_masks(pix, snd))


def test_cli_writes_a_loadable_checkpoint(tmp_path, capsys):
    parts = _original_layout_dicts()
    for name, state in parts.items():
        torch.save(state, tmp_path / import_original.FILENAMES[name])
    out = tmp_path / "imported.safetensors"
    assert import_original.main(["--dir", str(tmp_path), "--out", str(out)]) == 0
    import pixelplayer
    assert pixelplayer.load(out).config == FULL


def test_bad_files_give_one_line_errors(tmp_path, capsys):
    parts = _original_layout_dicts()
    for name, state in parts.items():
        torch.save(state, tmp_path / import_original.FILENAMES[name])
    (tmp_path / "frame_best.pth").write_bytes(b"garbage")
    assert import_original.main(["--dir", str(tmp_path), "--out", str(tmp_path / "o.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "frame_best.pth" in err and "\n" not in err
    sound = dict(parts["sound"])
    del sound["bn0.weight"]
    sound["unet_block.model.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(parts["frame"], tmp_path / "frame_best.pth")
    torch.save(sound, tmp_path / "sound_best.pth")
    with pytest.raises(CheckpointError, match="missing keys"):
        import_original.import_original(tmp_path / "sound_best.pth", tmp_path / "frame_best.pth",
                                        tmp_path / "synthesizer_best.pth")
    sound["bn0.weight"] = torch.ones(1)
    torch.save(sound, tmp_path / "sound_best.pth")
    with pytest.raises(CheckpointError, match="wrong shape for net_sound.unet_block.model.0.weight"):
        import_original.import_original(tmp_path / "sound_best.pth", tmp_path / "frame_best.pth",
                                        tmp_path / "synthesizer_best.pth")
    assert import_original.main(["--out", str(tmp_path / "x.pt")]) == 2
