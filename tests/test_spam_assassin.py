"""The ``spam-assassin`` text dataset, its population-only vocabulary and the text models, on a tiny fake
corpus written in the npm package's layout (no network, no real corpus)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from safecompress.cli import main
from safecompress.data import DataContext, load_dataset
from safecompress.data.spam_assassin import FOLDERS, parse_message
from safecompress.data.split import make_split
from safecompress.data.text import PAD, UNK, TokenFeaturizer, tokenize
from safecompress.errors import DataError, DatasetNotFoundError
from safecompress.models import ModelSpec, build_model
from safecompress.runsetup import featurised
from safecompress.sparse.masks import prunable_parameters

HAM_WORDS = "meeting project linux kernel patch release thanks review build server list update".split()
SPAM_WORDS = "free money click offer winner cash prize credit viagra cheap deal limited".split()


def _mail(i: int, spam: bool, rng: np.random.Generator) -> bytes:
    words = SPAM_WORDS if spam else HAM_WORDS
    body = " ".join(rng.choice(words, 30)) + f" common words here {i}"
    subject = " ".join(rng.choice(words, 3))
    head = (
        f"From sender{i}@example.com  Thu Aug 22 13:17:22 2002\n"
        f"Received: from host{i}.example.com ([10.0.0.{i % 250}]) by relay.example.org\n"
        f"Message-ID: <uniqueid{i}x@example.com>\n"
        f"From: person{i} <person{i}@example.com>\n"
        f"Subject: {subject}\n"
    )
    if spam and i % 2:  # HTML, quoted-printable, with a base64 image attachment
        return (
            head + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BB"\n\n--BB\n'
            "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
            f"<html><body><font color=3D#ff0000>{body}</font>&nbsp;</body></html>\n"
            "--BB\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\n"
            f"{base64.b64encode(b'GIF89a imagebytes').decode()}\n--BB--\n"
        ).encode()
    return (head + f"\n{body}\n").encode("latin-1")


def write_corpus(root: Path, per_folder: int = 24, seed: int = 0) -> Path:
    """``root/spam-assassin/data/<folder>/<nnnnn>.<md5>.txt`` plus the manifest, like the npm package."""
    rng = np.random.default_rng(seed)
    data = root / "spam-assassin" / "data"
    listed = []
    for k, (folder, label) in enumerate(FOLDERS.items()):
        (data / folder).mkdir(parents=True)
        for j in range(per_folder):
            raw = _mail(1000 * k + j, bool(label), rng)
            name = f"{j + 1:05d}.{hashlib.md5(raw).hexdigest()}.txt"
            (data / folder / name).write_bytes(raw)
            listed.append(f"{folder}/{name}")
    (data / "file_list.json").write_text(json.dumps(listed))
    return data


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def _load(path: Path):
    return load_dataset("spam-assassin", DataContext(path=path))


def test_parsing_is_deterministic_sorted_and_labelled(corpus):
    a, b = _load(corpus), _load(corpus.parent)  # the data folder or its parent
    assert a.kind == "text" and a.n_classes == 2 and a.class_names == ["ham", "spam"] and a.needs_fit
    assert len(a) == 5 * 24 and list(a.X) == list(b.X) and np.array_equal(a.y, b.y)
    assert a.y.tolist() == [0] * 24 * 3 + [1] * 24 * 2  # folders in sorted order: easy-ham-1, -2, hard-ham-1, spam
    first = sorted((corpus / "easy-ham-1").glob("*.txt"))[0]
    assert a.X[0] == parse_message(first.read_bytes())


def test_only_the_subject_header_is_kept_and_mime_parts_are_decoded(corpus):
    raw = sorted((corpus / "spam-1").glob("*.txt"))[1].read_bytes()  # an HTML + attachment mail
    text = parse_message(raw)
    subject = raw.decode().split("Subject: ")[1].split("\n")[0]
    assert text.startswith(subject)
    for header_value in ("uniqueid", "relay", "person", "sender", "2002"):
        assert header_value not in text  # Message-ID, Received, From, the mbox line: dropped
    assert "<font" not in text and "3D" not in text and "nbsp" not in text  # tags, entities, QP decoded
    assert "imagebytes" not in text and "R0lG" not in text  # the non-text part is dropped
    assert "common words here" in text
    latin = parse_message(b"Subject: caf\xe9 ol\xe9\n\nna\xefve body\n")  # invalid UTF-8: replaced, never raises
    assert latin.startswith("caf\ufffd") and tokenize(latin) == ["caf", "ol", "na", "ve", "body"]


def test_a_bad_file_is_reported_with_its_path(corpus):
    bad = corpus / "hard-ham-1" / "00999.unreadable.txt"
    bad.mkdir()  # a "message" that cannot be read as a file (root can read chmod-000 files)
    with pytest.raises(DataError, match=r"cannot read message .*00999\.unreadable\.txt"):
        _load(corpus)


def test_an_empty_message_is_skipped_with_a_logged_count(corpus, caplog):
    (corpus / "spam-2" / "00999.empty.txt").write_bytes(b"Message-ID: <x@y>\nContent-Type: image/gif\n\nR0lGOD==\n")
    with caplog.at_level(logging.WARNING, logger="safecompress"):
        ds = _load(corpus)
    assert len(ds) == 5 * 24
    assert "skipped 1 message(s) with no text" in caplog.text and "00999.empty.txt" in caplog.text


def test_missing_or_corrupt_corpus_errors_name_the_fetch_script(corpus, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match="fetch-spam-assassin.sh"):
        _load(empty)
    listed = json.loads((corpus / "file_list.json").read_text())
    (corpus / listed[5]).unlink()
    with pytest.raises(DataError, match=r"corrupt: 1 of the 120 messages .*fetch-spam-assassin\.sh"):
        _load(corpus)
    for f in (corpus / "spam-2").iterdir():
        f.unlink()
    (corpus / "spam-2").rmdir()
    with pytest.raises(DataError, match=r"no folder spam-2.*fetch-spam-assassin\.sh"):
        _load(corpus)
    (corpus / "spam-2").mkdir()
    (corpus / "spam-2" / "00001.x.txt").write_bytes(b"Subject: hello\n\nbody\n")
    (corpus / "file_list.json").write_text("{not json")
    with pytest.raises(DataError, match=r"cannot read its manifest .*fetch-spam-assassin\.sh"):
        _load(corpus)


def test_the_vocabulary_is_fitted_on_the_population_only(corpus):
    from safecompress.config import SplitConfig

    ds = _load(corpus)
    split = make_split(len(ds), SplitConfig(), seed=0)
    marked = ds.X.copy()
    for i in split["train"]:  # a word only the members use, and members' texts changed wholesale
        marked[i] = "zzmemberonly " + marked[i].upper() + " memberword2 memberword2"
    from dataclasses import replace

    plain = featurised(ds, split)
    changed = featurised(replace(ds, X=marked, featurizer=TokenFeaturizer(256, 20000, 2)), split)
    assert plain.vocab_size == changed.vocab_size and plain.kind == "text"
    assert plain.X.dtype == np.float32 and plain.X.shape == (len(ds), 256)
    non_members = np.setdiff1d(np.arange(len(ds)), split["train"])
    assert np.array_equal(plain.X[non_members], changed.X[non_members])  # identical vocabulary
    first = changed.X[split["train"], 0]
    assert (first == UNK).all()  # "zzmemberonly" is not in the vocabulary
    feat = TokenFeaturizer(256, 20000, 2).fit(ds.X[split["population"]].tolist())
    assert "zzmemberonly" not in feat.index_ and feat.vocabulary_[:2] == ["<pad>", "<unk>"]
    assert feat.encode("meeting zzzunknown")[:3].tolist() == [feat.index_["meeting"], UNK, PAD]


@pytest.mark.parametrize("name", ["fasttext", "textcnn"])
def test_text_models_forward_and_sparsify_their_embedding(name):
    spec = ModelSpec(name, (16,), 2, 0.25, "auto", vocab_size=2000)
    model = build_model(spec, seed=0)
    x = torch.tensor([[2.0, 5, 7] + [0] * 13, [1999, 2500, -3] + [1] * 13, [0] * 16])  # out of range -> unknown
    assert model(x).shape == (3, 2)
    params = prunable_parameters(model)
    assert "embed.weight" in params and params["embed.weight"].shape == (2000, 16)
    embed = params["embed.weight"].numel()
    assert embed > 0.5 * sum(p.numel() for p in params.values())
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert "vocab_size" not in ModelSpec("mlp", (4,), 2).to_dict()  # other models' files are unchanged
    with pytest.raises(Exception, match="token-id rows"):
        build_model(ModelSpec(name, (3, 8, 8), 2), seed=0)


def test_a_sparse_run_on_the_tiny_corpus_end_to_end(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", per_folder=36)  # a population of 54: room for 20 canaries
    out = tmp_path / "run"
    args = ["--preset", "ci", "--set", "data.name=spam-assassin", "--set", f"data.path={corpus}"]
    for item in (
        "method.name=rigl",
        "sparse.density=0.2",
        "sparse.update_every=2",
        "train.epochs=10",
        "train.batch_size=8",
        "audit.refs=1",
        "audit.bootstrap=10",
        "audit.attacks=[loss,label_only,inversion]",
        "audit.canaries=20",
    ):
        args += ["--set", item]
    assert main(["run", *args, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "fasttext" and report["data"]["kind"] == "text"
    assert 2 < report["data"]["vocab_size"] < 100
    embed = report["method_details"]["sparse"]["layers"]["embed.weight"]
    assert embed["density"] < 0.5 and embed["ever_active"] > embed["density"]  # pruned and regrown
    assert report["task"]["accuracy"] >= 0.7  # the fake corpus is separable by its words
    assert "auc" in report["audit"]["attacks"]["label_only"]
    assert "token ids" in report["audit"]["inversion"]["skipped"]
    from safecompress.checkpoint import load_model

    model = load_model(out / "model.safetensors")
    assert model.embed.weight.shape[0] == report["data"]["vocab_size"]
    # re-auditing the folder featurises the data again from the saved split: same vocabulary, same model inputs
    assert main(["audit", str(out), "--attacks", "loss"]) == 0
    assert "auc" in json.loads((out / "report.json").read_text())["audit"]["attacks"]["loss"]
    # the saved vocabulary: fitted on the attacker's population (population less every canary), in the manifest
    from safecompress.canaries import Canaries
    from safecompress.data.split import MembershipSplit

    vocab = json.loads((out / "vocabulary.json").read_text())
    ds = _load(corpus)
    split = MembershipSplit.load(out / "split.npz", n_total=len(ds))
    canaries = Canaries.load(out)
    attacker = np.setdiff1d(split["population"], canaries.idx)
    assert len(canaries) == 20 and len(attacker) == len(split["population"]) - 20
    assert vocab["tokens"] == TokenFeaturizer(256, 20000, 2).fit(ds.X[attacker].tolist()).vocabulary_
    assert vocab["n_docs"] == len(attacker) and vocab["vocab_size"] == report["data"]["vocab_size"]
    assert "vocabulary.json" in json.loads((out / "report.json").read_text())["manifest"]
    # a changed corpus (new words in two population mails) refits another vocabulary: audit and resume refuse
    files = sorted(p for p in corpus.glob("*/*.txt"))
    for i in attacker[:2]:
        original = files[i].read_bytes()
        files[i].write_bytes(original.replace(b"\n\n", b"\n\nzznewword zznewword ", 1))
    capsys.readouterr()
    assert main(["audit", str(out), "--attacks", "loss"]) == 2
    err = capsys.readouterr().err
    assert "the corpus or its parser changed" in err and "vocabulary.json" in err and "fetch" in err.lower()
    (out / "report.json").rename(tmp_path / "report.json")  # an unfinished run: --resume featurises again
    assert main(["run", *args, "--out", str(out), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    (tmp_path / "report.json").rename(out / "report.json")
    # an edited vocabulary.json is refused by the report's manifest
    vocab["tokens"][5] = "zzedited"
    (out / "vocabulary.json").write_text(json.dumps(vocab))
    assert main(["audit", str(out), "--attacks", "loss"]) == 2
    assert "vocabulary.json (changed)" in capsys.readouterr().err


def test_duplicates_are_dropped_keeping_the_first_in_sorted_order(corpus, caplog):
    first = sorted((corpus / "easy-ham-1").glob("*.txt"))[0]
    head, body = first.read_bytes().split(b"\n\n", 1)
    # other headers, other whitespace, another folder (and label): the same mail once parsed
    copy = b"Message-ID: <another@x>\n" + head.split(b"Subject:")[1].join([b"Subject:", b""]) + b"\n\n  " + body
    copy = copy.replace(b" ", b"   \n ", 3)
    (corpus / "spam-2" / "00999.duplicate.txt").write_bytes(copy)
    with caplog.at_level(logging.INFO, logger="safecompress"):
        ds = _load(corpus)
    assert len(ds) == 5 * 24 and ds.y[0] == 0 and int(ds.y.sum()) == 2 * 24  # the copy (spam-2) is the one dropped
    assert "dropped 1 duplicate message(s)" in caplog.text and "00999.duplicate.txt" in caplog.text


def test_a_malformed_encoded_subject_keeps_the_mail_and_is_logged(corpus, caplog, monkeypatch):
    raw = b"Subject: =?utf-8?b?a?= hello =?utf-8?q?caf=C3=A9?=\n\nofferword body text\n"
    assert parse_message(raw).split() == ["hello", "caf\u00e9", "offerword", "body", "text"]  # never raises
    (corpus / "spam-2" / "00999.badheader.txt").write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="safecompress"):
        ds = _load(corpus)
    assert len(ds) == 5 * 24 + 1 and "offerword" in ds.X[-1]
    assert "1 message(s) have a Subject with malformed encoded words" in caplog.text
    assert "00999.badheader.txt" in caplog.text
    # a message the email package cannot parse at all is skipped like an empty one, with its path logged
    from email.errors import HeaderParseError

    from safecompress.data import spam_assassin

    real_body = spam_assassin._body

    def body(msg):
        text = real_body(msg)
        if "offerword" in text:
            raise HeaderParseError("broken")
        return text

    monkeypatch.setattr(spam_assassin, "_body", body)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="safecompress"):
        ds = _load(corpus)
    assert len(ds) == 5 * 24 and "skipped 1 message(s) that cannot be parsed" in caplog.text
    assert "00999.badheader.txt" in caplog.text


def test_fitting_leaves_the_loaders_featurizer_unfitted(corpus):
    ds = _load(corpus)
    fitted = ds.fitted(np.arange(40))
    assert not hasattr(ds.featurizer, "vocabulary_") and ds.needs_fit
    assert fitted.feature_state["tokens"][:2] == ["<pad>", "<unk>"]
    assert fitted.feature_state["vocab_size"] == fitted.vocab_size == len(fitted.feature_state["tokens"])


def test_a_word_only_in_the_canaries_is_unknown(corpus):
    from dataclasses import replace

    from safecompress.canaries import make_canaries
    from safecompress.config import SplitConfig

    ds = _load(corpus)
    split = make_split(len(ds), SplitConfig(), seed=0)
    canaries = make_canaries(split, ds.y, ds.n_classes, 6, split.seed)
    marked = ds.X.copy()
    for i in canaries.idx:  # in every canary (members and non-members): df 6 >= min_df
        marked[i] = "zzcanaryonly " + marked[i]
    ds = replace(ds, X=marked)
    out = featurised(ds, split, canaries)
    attacker = np.setdiff1d(split["population"], canaries.idx)
    expected = TokenFeaturizer(256, 20000, 2).fit(ds.X[attacker].tolist())
    assert out.feature_state["tokens"] == expected.vocabulary_ and "zzcanaryonly" not in expected.index_
    assert (out.X[canaries.idx, 0] == UNK).all()
    assert "zzcanaryonly" in featurised(ds, split).feature_state["tokens"]  # what leaked before
