"""attn_course.data.colour_question_task: lesson 08's questions about one colour's tokens."""

import pytest
import torch

from attn_course.data import COLOURS, TOKEN_SHAPES, colour_question_task


@pytest.fixture(scope="module")
def questions():
    return colour_question_task(400, generator=torch.Generator().manual_seed(3))


def test_shapes_dtypes_and_the_question_token_first(questions):
    assert questions.colours.shape == questions.shapes.shape == (400, 24)
    assert questions.tokens.shape == (400, 25) and questions.tokens.dtype == torch.int64
    num_items = len(COLOURS) * len(TOKEN_SHAPES)
    assert torch.equal(questions.tokens[:, 0], num_items + questions.asked)
    assert int(questions.tokens[:, 1:].max()) < num_items


def test_the_label_is_a_strict_majority_among_the_asked_colours_tokens(questions):
    counts = torch.stack([(questions.is_asked & (questions.shapes == shape)).sum(-1)
                          for shape in range(len(TOKEN_SHAPES))], dim=-1)  # (N, S)
    top_two = counts.topk(2, dim=-1).values  # (N, 2)
    assert torch.equal(counts.argmax(dim=-1), questions.labels)
    assert (top_two[:, 0] > top_two[:, 1]).all()
    assert (2 * top_two[:, 0] > counts.sum(-1)).all()  # more than half of the asked tokens
    assert set(questions.is_asked.sum(-1).tolist()) == {3, 4, 5, 6}


def test_every_group_has_its_own_colour_and_majority_and_the_question_names_one(questions):
    assert (questions.group_colours == questions.asked.unsqueeze(-1)).sum(-1).eq(1).all()
    for row in range(40):
        majorities = questions.group_majorities[row]
        assert len(set(majorities.tolist())) == len(majorities)
        for colour, majority in zip(questions.group_colours[row], majorities, strict=True):
            in_group = questions.shapes[row, questions.colours[row] == colour]
            assert 2 * (in_group == majority).sum() > len(in_group)


def test_the_answer_is_spread_over_the_shapes_and_the_data_is_seeded(questions):
    assert questions.labels.bincount(minlength=len(TOKEN_SHAPES)).min() > 60
    again = colour_question_task(400, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.tokens, questions.tokens)


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="groups"):
        colour_question_task(5, num_groups=5, generator=torch.Generator().manual_seed(0))
