package io.crownstream.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of the standings fold: every team result of the bench topic folded into per-team totals
 * (placement points from the point table + kill points, both given by the caller
 * from crownstream.standings so that every peer scores with the same table), exactly_once_v2, one stream thread.
 *
 * <p>Usage: TeamTotals BOOTSTRAP TOPIC COUNT STATE_DIR APPLICATION_ID TIMEOUT_S POINT_TABLE KILL_POINTS
 * (POINT_TABLE: the points of placement 1, 2, … comma-separated). Prints {@code RESULT {...}} once
 * COUNT records are processed (first to last processed, as the other bench rows are timed), then
 * {@code TOTALS {...}} read back from the state store, then shuts down (which commits).
 *
 * <p>The records are keyed by tournament and a team plays in one tournament, so the store is keyed
 * "tournament/team" by a processor on the source stream: the DSL's rekey-then-groupByKey would add a repartition
 * topic that neither the Crownstream agent nor the Quix Streams peer pays for.
 */
public final class TeamTotals {
  static final String STORE = "team-totals";
  static int[] table;
  static int killPoints;
  static final ObjectMapper MAPPER = new ObjectMapper();

  static final AtomicLong SEEN = new AtomicLong();
  static volatile long firstNanos;
  static volatile long lastNanos;

  static int points(int placement, int kills) {
    return (placement >= 1 && placement <= table.length ? table[placement - 1] : 0) + kills * killPoints;
  }

  static final class Fold implements Processor<String, byte[], Void, Void> {
    private final long count;
    private final CountDownLatch done;
    private KeyValueStore<String, Long> store;

    Fold(long count, CountDownLatch done) {
      this.count = count;
      this.done = done;
    }

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      store = context.getStateStore(STORE);
    }

    @Override
    public void process(Record<String, byte[]> record) {
      JsonNode value;
      try {
        value = MAPPER.readTree(record.value());
      } catch (IOException e) {
        throw new UncheckedIOException("a record of the bench topic is not JSON", e);
      }
      String key = value.get("tournament_id").asText() + "/" + value.get("team_id").asText();
      Long total = store.get(key);
      store.put(key, (total == null ? 0L : total) + points(value.get("placement").asInt(), value.get("kills").asInt()));
      long seen = SEEN.incrementAndGet();
      if (seen == 1) {
        firstNanos = System.nanoTime();
      }
      if (seen == count) {
        lastNanos = System.nanoTime();
        done.countDown();
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 8) {
      System.err.println(
          "usage: TeamTotals BOOTSTRAP TOPIC COUNT STATE_DIR APPLICATION_ID TIMEOUT_S POINT_TABLE KILL_POINTS");
      System.exit(64);
    }
    String bootstrap = args[0], topic = args[1], stateDir = args[3], applicationId = args[4];
    long count = Long.parseLong(args[2]);
    long timeoutSeconds = Long.parseLong(args[5]);
    table = java.util.Arrays.stream(args[6].split(",")).mapToInt(Integer::parseInt).toArray();
    killPoints = Integer.parseInt(args[7]);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    // commit.interval.ms and statestore.cache.max.bytes stay at their defaults (100 ms under EOS, 10 MiB).

    CountDownLatch done = new CountDownLatch(1);
    StreamsBuilder builder = new StreamsBuilder();
    builder.addStateStore(
        Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.Long())
            .withCachingEnabled());
    builder.stream(topic, Consumed.with(Serdes.String(), Serdes.ByteArray())).process(() -> new Fold(count, done), STORE);

    AtomicReference<Throwable> failure = new AtomicReference<>();
    try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
      streams.setUncaughtExceptionHandler(e -> {
        failure.set(e);
        done.countDown();
        return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
      });
      streams.start();
      if (!done.await(timeoutSeconds, TimeUnit.SECONDS)) {
        System.err.printf("ERROR processed %d of %d records in %d s%n", SEEN.get(), count, timeoutSeconds);
        System.exit(2);
      }
      if (failure.get() != null) {
        System.err.println("ERROR the stream thread failed: " + failure.get());
        failure.get().printStackTrace();
        System.exit(3);
      }
      double elapsed = (lastNanos - firstNanos) / 1e9;
      ObjectNode result = MAPPER.createObjectNode().put("seen", SEEN.get()).put("elapsed", elapsed);
      System.out.println("RESULT " + result);
      System.out.flush();

      ReadOnlyKeyValueStore<String, Long> view =
          streams.store(StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.keyValueStore()));
      ObjectNode totals = MAPPER.createObjectNode();
      try (KeyValueIterator<String, Long> all = view.all()) {
        while (all.hasNext()) {
          KeyValue<String, Long> entry = all.next();
          totals.put(entry.key, entry.value);
        }
      }
      System.out.println("TOTALS " + totals);
      System.out.flush();
      streams.close(Duration.ofSeconds(30));
    }
  }
}
