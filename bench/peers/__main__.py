"""``python -m bench.peers``: make the Quix Streams venv and build the Kafka Streams jar now (both are cached under
.state/bench/), so that the first bench run or test does not spend its time on them."""

from bench.peers import kafka_streams, quix_env

if __name__ == "__main__":
    print(f"Quix Streams venv: {quix_env.python()}")
    print(f"Kafka Streams peer: {kafka_streams.jar()}")
