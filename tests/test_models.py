import pytest
import torch

from attn_course.data import PLACES, colour_question_task, fact_lookup_task, signal_token_task
from attn_course.models import (
    AttentionClassifier,
    CuedAttentionClassifier,
    FactReader,
    MeanPoolingClassifier,
    PiecePoolingClassifier,
    QueryAttentionClassifier,
    accuracy,
    train_classifier,
)
from attn_course.reference import SimpleAttention


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = AttentionClassifier(vocab_size=20, input_dim=16, num_classes=4)
    train = signal_token_task(2000, generator=torch.Generator().manual_seed(0))
    losses = train_classifier(model, train.tokens, train.labels,
                              generator=torch.Generator().manual_seed(2))
    test = signal_token_task(500, generator=torch.Generator().manual_seed(1))
    return model, losses, test


def test_forward_shapes_and_weights_are_a_distribution_over_the_sequence():
    torch.manual_seed(0)
    model = AttentionClassifier(vocab_size=10, input_dim=8, num_classes=3)
    logits, weights = model(torch.randint(10, (5, 7)))
    assert logits.shape == (5, 3)
    assert weights.shape == (5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5))


def test_pooling_is_the_sketchs_simple_attention_on_the_embeddings():
    torch.manual_seed(0)
    model = AttentionClassifier(vocab_size=10, input_dim=8, num_classes=3)
    assert isinstance(model.attention, SimpleAttention)
    tokens = torch.randint(10, (2, 6))
    context, weights = model.attention(model.embedding(tokens))
    logits, pooled_weights = model(tokens)
    torch.testing.assert_close(logits, model.classifier(context))
    torch.testing.assert_close(pooled_weights, weights.squeeze(-1))


def test_training_reaches_high_accuracy_on_held_out_sequences(trained):
    model, losses, test = trained
    assert len(losses) == 150
    assert losses[0] > 1.0
    assert sum(losses[-10:]) / 10 < 0.05
    assert accuracy(model, test.tokens, test.labels) > 0.97


def test_trained_attention_concentrates_on_the_signal_token(trained):
    model, _, test = trained
    with torch.no_grad():
        _, weights = model(test.tokens)
    on_signal = weights[test.is_signal]  # (N,) the weight of each sequence's signal token
    uniform = 1 / test.tokens.size(1)
    assert on_signal.mean() > 10 * uniform
    hits = (weights.argmax(-1) == test.signal_position).float()  # (N,)
    hits_per_class = torch.stack([hits[test.labels == c].mean() for c in range(4)])  # (4,)
    # Three classes are found by looking; the fourth may be learned as "none of the other three
    # is here" (lesson 08 shows it), so its signal token need not get the largest weight.
    assert (hits_per_class > 0.95).sum() >= 3


def test_untrained_attention_is_spread_out():
    torch.manual_seed(0)
    model = AttentionClassifier(vocab_size=20, input_dim=16, num_classes=4)
    test = signal_token_task(500, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, weights = model(test.tokens)
    assert weights[test.is_signal].mean() < 3 / test.tokens.size(1)


def test_training_is_deterministic():
    def run():
        torch.manual_seed(5)
        model = AttentionClassifier(vocab_size=20, input_dim=8, num_classes=4)
        data = signal_token_task(300, generator=torch.Generator().manual_seed(5))
        return train_classifier(model, data.tokens, data.labels, steps=20,
                                generator=torch.Generator().manual_seed(6))

    assert run() == run()


def test_mean_pooling_baseline_averages_the_embeddings_with_equal_weights():
    torch.manual_seed(0)
    model = MeanPoolingClassifier(vocab_size=10, input_dim=8, num_classes=3)
    tokens = torch.randint(10, (4, 6))
    logits, weights = model(tokens)
    torch.testing.assert_close(logits, model.classifier(model.embedding(tokens).mean(dim=1)))
    torch.testing.assert_close(weights, torch.full((4, 6), 1 / 6))
    shuffled_logits, _ = model(tokens[:, torch.randperm(6)])
    torch.testing.assert_close(shuffled_logits, logits)  # order-blind: it sees no positions


def test_mean_pooling_trained_the_same_way_stays_well_behind_attention(trained):
    model, _, test = trained
    torch.manual_seed(0)
    baseline = MeanPoolingClassifier(vocab_size=20, input_dim=16, num_classes=4)
    train = signal_token_task(2000, generator=torch.Generator().manual_seed(0))
    train_classifier(baseline, train.tokens, train.labels,
                     generator=torch.Generator().manual_seed(2))
    baseline_accuracy = accuracy(baseline, test.tokens, test.labels)
    assert baseline_accuracy < 0.85
    assert accuracy(model, test.tokens, test.labels) > baseline_accuracy + 0.15


def test_fact_reader_reads_the_story_tokens_and_weights_the_facts():

    stories = fact_lookup_task(8, num_facts=6, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    logits, weights = FactReader(d_model=8)(stories.tokens)
    assert logits.shape == (8, len(PLACES)) and weights.shape == (8, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(8))


def test_piece_pooling_classifier_shapes():

    torch.manual_seed(0)
    logits, weights = PiecePoolingClassifier(5, 8, 3)(torch.randn(2, 4, 5))
    assert logits.shape == (2, 3) and weights.shape == (2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_query_attention_scores_each_token_by_its_dot_product_with_the_question():
    data = colour_question_task(6, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = QueryAttentionClassifier(8, 4, 16, 4)
    logits, weights = model(data.tokens)
    assert logits.shape == (6, 4) and weights.shape == (6, 24)
    x = model.colour(data.colours) + model.shape(data.shapes)  # (N, T, D)
    query = model.colour(data.asked)  # (N, D)
    expected = torch.softmax(torch.einsum("ntd,nd->nt", x, query) / 4.0, dim=-1)
    torch.testing.assert_close(weights, expected)


def test_query_attention_trained_puts_its_weight_on_the_asked_colour():
    generator = torch.Generator().manual_seed(0)
    train = colour_question_task(3000, generator=generator)
    test = colour_question_task(500, generator=generator)
    torch.manual_seed(0)
    model = QueryAttentionClassifier(8, 4, 32, 4)
    train_classifier(model, train.tokens, train.labels, steps=200,
                     generator=torch.Generator().manual_seed(0))
    assert accuracy(model, test.tokens, test.labels) > 0.95
    with torch.no_grad():
        _, weights = model(test.tokens)
    assert (weights * test.is_asked).sum(-1).mean() > 0.9


def test_cued_attention_classifier_queries_with_the_first_piece():

    torch.manual_seed(0)
    model = CuedAttentionClassifier(5, 8, 3)
    pieces = torch.randn(2, 4, 5)
    logits, weights = model(pieces)
    assert logits.shape == (2, 3) and weights.shape == (2, 3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    other_cue = pieces.clone()
    other_cue[:, 0] = torch.randn(2, 5)
    assert not torch.allclose(model(other_cue)[1], weights), "the cue chooses the weights"
