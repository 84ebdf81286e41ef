"""The OR gate, TF1-style: placeholders, variables and a Session — the classic static graph.

The graph exists before anything runs; graphscope reads it as the Session would.

    graphscope trace examples/or_gate_tf1.py --fw tf1
    graphscope step examples/or_gate_tf1.py --fw tf1     # the same values as or_gate_tf.py
    python examples/or_gate_tf1.py        # trains it in a Session
"""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = np.array([[0], [1], [1], [1]], dtype=np.float32)


# The same kernels as or_gate_tf.py: one seeded numpy generator, drawn in layer order.
rng = np.random.default_rng(0)


def dense(x, units, name, bias):
    with tf1.variable_scope(name):
        kernel = rng.normal(0.0, 0.05, (x.shape[1], units)).astype(np.float32)
        w = tf1.get_variable("kernel", kernel.shape, initializer=tf1.constant_initializer(kernel))
        b = tf1.get_variable("bias", [units], initializer=tf1.constant_initializer(bias))
        return tf.sigmoid(tf.matmul(x, w) + b)


graph = tf.Graph()
with graph.as_default():
    x = tf1.placeholder(tf.float32, [4, 2], name="x")
    h = dense(x, 4, "hidden1", bias=0.1)
    h = dense(h, 4, "hidden2", bias=0.2)
    prediction = tf.identity(dense(h, 1, "out", bias=0.3), name="prediction")

example_inputs = (INPUTS,)  # fed to the placeholder x when stepping


if __name__ == "__main__":
    # Training adds a loss, gradients and an optimizer to the same static graph.
    with graph.as_default():
        y = tf1.placeholder(tf.float32, [4, 1], name="y")
        loss = tf.reduce_mean(tf.square(prediction - y), name="loss")
        train = tf1.train.GradientDescentOptimizer(1.0).minimize(loss)
        init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as session:
        session.run(init)
        for _ in range(2000):
            session.run(train, {x: INPUTS, y: TARGETS})
        print(session.run(prediction, {x: INPUTS}).round(2))
