import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Proof consumer: Java drives libzerobus.so.1 through JNI (zerobus_jni.c).
 *
 * <p>Starts zerobus-local (with OAuth: test-client/test-secret), opens a JSON stream on
 * main.default.abi_java with the option dispatch_thread=true, ingests 1,000 records, receives
 * the 1,000 acks on the library's dispatcher thread (attached to the JVM in on_thread_start and
 * detached in on_thread_stop by the glue), flushes, closes, destroys (which releases the
 * listener exactly once), and reads the row count back from SQLite (exactly 1,000, ids 0..999
 * in order).
 *
 * <p>usage: java -Djava.library.path=DIR AbiConsumer SERVER_BINARY
 */
public final class AbiConsumer {
  static final String TABLE = "main.default.abi_java";
  static final int N = 1000;

  /** A libzerobus error as a Java exception (thrown by the glue). */
  public static final class ZerobusException extends Exception {
    private static final long serialVersionUID = 1L;
    public final int code;
    public final String name;
    public final boolean retryable;

    public ZerobusException(int code, String name, String message, boolean retryable) {
      super(name + ": " + message);
      this.code = code;
      this.name = name;
      this.retryable = retryable;
    }
  }

  /** Called by the glue from the library's dispatcher thread. */
  static final class Listener {
    final List<Long> acks = new ArrayList<>();
    final List<String> errors = new ArrayList<>();
    final CountDownLatch allAcked = new CountDownLatch(N);
    volatile String callbackThread;
    volatile int released;
    final List<String> threadEvents = new ArrayList<>(); // "start:NAME@THREAD", "stop@THREAD"

    /** The library's thread NAME was just attached to the JVM (its first callback). */
    public void onThreadStart(String name) {
      synchronized (threadEvents) {
        threadEvents.add("start:" + name + "@" + Thread.currentThread().getName());
      }
    }

    /** The thread's last callback, before the glue detaches it. */
    public void onThreadStop() {
      synchronized (threadEvents) {
        threadEvents.add("stop@" + Thread.currentThread().getName());
      }
    }

    public void onAck(long offset) {
      synchronized (acks) {
        acks.add(offset);
      }
      callbackThread = Thread.currentThread().getName();
      allAcked.countDown();
    }

    public void onError(long offset, int code, String message) {
      synchronized (errors) {
        errors.add(offset + ":" + code + ":" + message);
      }
    }

    public void onReleased() {
      released++;
    }
  }

  static native long sdkNew(String endpoint, String workspace) throws ZerobusException;

  static native void sdkDestroy(long sdk);

  static native long streamCreate(long sdk, String table, String clientId, String clientSecret,
      String[] options, Listener listener) throws ZerobusException;

  static native long ingest(long stream, byte[] record) throws ZerobusException;

  static native void flush(long stream) throws ZerobusException;

  static native void close(long stream) throws ZerobusException;

  static native void destroy(long stream);

  static native long[] stats(long stream) throws ZerobusException;

  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  public static void main(String[] args) throws Exception {
    System.loadLibrary("zerobus_abi_jni");
    Path tmp = Files.createTempDirectory("zerobus-abi-java");
    Path db = tmp.resolve("java.db");
    Process server = new ProcessBuilder(args[0], "--port", "0", "--http-port", "0", "--db",
        db.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    BufferedReader out = new BufferedReader(
        new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
    String line = out.readLine();
    int rc = 1;
    try {
      check(line != null && line.startsWith("zerobus-local "), "server did not start: " + line);
      String grpc = null, http = null;
      for (String f : line.split(" ")) {
        if (f.startsWith("grpc=")) grpc = "http://" + f.substring(5);
        if (f.startsWith("http=")) http = "http://" + f.substring(5);
      }
      run(grpc, http);
      server.destroy(); // SIGTERM
      check(server.waitFor(30, TimeUnit.SECONDS) && server.exitValue() == 0,
          "zerobus-local did not exit cleanly");
      Process q = new ProcessBuilder("sqlite3", db.toString(),
          "SELECT count(*), group_concat(id) FROM (SELECT id FROM \"" + TABLE
              + "\" ORDER BY rowid)").start();
      String res = new String(q.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      check(q.waitFor() == 0, "sqlite3 failed");
      String want = N + "|" + IntStream.range(0, N).mapToObj(Integer::toString)
          .collect(Collectors.joining(","));
      check(res.equals(want), "stored rows: " + res.split("\\|")[0] + ", expected " + N
          + " with ids 0.." + (N - 1) + " in order");
      System.out.println("java: stored rows " + N + ", ids 0.." + (N - 1) + " in order");
      rc = 0;
    } catch (AssertionError | ZerobusException e) {
      System.out.println("java: FAILED: " + e.getMessage());
    } finally {
      server.destroyForcibly();
      for (File f : tmp.toFile().listFiles()) f.delete();
      tmp.toFile().delete();
    }
    System.exit(rc);
  }

  static long dispatchThreadsAlive() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals("zerobus-dispatch")).count();
  }

  static void run(String endpoint, String workspace) throws Exception {
    long sdk = sdkNew(endpoint, workspace);
    try {
      String[] opts = {"record_type", "json", "dispatch_thread", "true"};
      // Errors come back as typed exceptions; the listener is released even on failure.
      Listener rejected = new Listener();
      try {
        streamCreate(sdk, TABLE, "test-client", "wrong", opts, rejected);
        check(false, "wrong secret accepted");
      } catch (ZerobusException e) {
        check(e.name.equals("ZEROBUS_ERR_UNAUTHENTICATED") && !e.retryable, "wrong secret: " + e);
      }
      check(rejected.released == 1, "listener of a failed create released " + rejected.released);
      try {
        streamCreate(sdk, TABLE, "test-client", "test-secret",
            new String[] {"record_type", "jsonish"}, new Listener());
        check(false, "bad option value accepted");
      } catch (ZerobusException e) {
        check(e.name.equals("ZEROBUS_ERR_INVALID_OPTION"), "bad option: " + e);
      }

      Listener listener = new Listener();
      long stream = streamCreate(sdk, TABLE, "test-client", "test-secret", opts, listener);
      try {
        for (int i = 0; i < N; i++) {
          byte[] rec = ("{\"id\":" + i + ",\"lang\":\"java\"}").getBytes(StandardCharsets.UTF_8);
          long off = ingest(stream, rec);
          check(off == i, "ingest " + i + " returned offset " + off);
        }
        flush(stream);
        check(listener.allAcked.await(30, TimeUnit.SECONDS),
            "acks received: " + listener.acks.size());
        long[] st = stats(stream);
        check(st[1] == N && st[2] == N - 1 && st[3] == 0,
            "stats acked " + st[1] + " acked_offset " + st[2] + " inflight " + st[3]);
        close(stream);
      } finally {
        destroy(stream);
      }
      synchronized (listener.acks) {
        check(listener.acks.size() == N, "acks " + listener.acks.size());
        for (int i = 0; i < N; i++) {
          check(listener.acks.get(i) == i, "ack #" + i + " is offset " + listener.acks.get(i));
        }
      }
      check(listener.errors.isEmpty(), "errors: " + listener.errors);
      check(listener.released == 1, "listener released " + listener.released + " times");
      // One library thread ran callbacks: attached once (on_thread_start) before the acks,
      // detached once (on_thread_stop) before destroy returned, so no Java thread of that
      // name is left, without waiting.
      synchronized (listener.threadEvents) {
        check(listener.threadEvents.equals(
                List.of("start:zerobus-dispatch@zerobus-dispatch", "stop@zerobus-dispatch")),
            "thread hooks: " + listener.threadEvents);
      }
      check(dispatchThreadsAlive() == 0, "dispatcher thread still attached after destroy");
      check(listener.callbackThread.equals("zerobus-dispatch"),
          "acks ran on thread " + listener.callbackThread);
      check(rejected.threadEvents.isEmpty() || rejected.threadEvents.equals(
              List.of("start:zerobus-dispatch@zerobus-dispatch", "stop@zerobus-dispatch")),
          "thread hooks of the failed create: " + rejected.threadEvents);
      System.out.println("java: " + N + " acks in order on thread '" + listener.callbackThread
          + "' (attached to the JVM in on_thread_start, detached in on_thread_stop: "
          + listener.threadEvents + "), listener released once");
    } finally {
      sdkDestroy(sdk);
    }
  }
}
