import pytest

from tinyvla.envs.toy_reach import all_instructions
from tinyvla.errors import DataError
from tinyvla.tokenizer import InstructionTokenizer


@pytest.fixture(scope="module")
def tok():
    return InstructionTokenizer.train(all_instructions(), context_length=8)


def test_pads_to_longest_and_masks_padding(tok):
    ids, mask = tok(["go to the red block", "reach the big crimson cube"])
    assert ids.shape == mask.shape == (2, 5)
    assert mask.all()
    ids, mask = tok(["go to the red block", "touch it"])
    assert mask[1].tolist() == [True, True, False, False, False]
    assert (ids[1, 2:] == tok.pad_id).all()


def test_unknown_words_map_to_unk_and_case_is_normalised(tok):
    a, _ = tok(["Go To The RED Block"])
    b, _ = tok(["go to the red block"])
    assert a.tolist() == b.tolist()
    ids, _ = tok(["go to the purple block"])
    assert tok.tok.token_to_id("[UNK]") in ids[0].tolist()


def test_long_instruction_is_truncated_with_a_warning(tok):
    with pytest.warns(UserWarning, match="truncated"):
        ids, mask = tok(["please move the arm to the red block and then go to the blue block now"])
    assert ids.shape == (1, 8)


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_instruction_is_an_error(tok, bad):
    with pytest.raises(DataError, match="empty"):
        tok([bad])


def test_save_load_round_trip(tok, tmp_path):
    tok.save(tmp_path / "tokenizer.json")
    again = InstructionTokenizer.load(tmp_path / "tokenizer.json", context_length=8)
    texts = all_instructions()[:50]
    assert [t.tolist() for t in tok(texts)] == [t.tolist() for t in again(texts)]
