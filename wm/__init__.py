"""World Models: environments, rollout data, V (ConvVAE), M (MDN-RNN), C (controller) and stages."""
