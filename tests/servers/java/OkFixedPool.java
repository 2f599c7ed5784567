/*
 * OkFixedPool.java - correct server, a fixed pool of 128 worker threads.
 *
 * Design: the main thread accepts and hands each connection to
 * Executors.newFixedThreadPool(128); a worker serves the session, closes the socket and
 * goes back to the pool. ThreadPoolExecutor starts a new worker for every task until it
 * has 128 (even when one is idle), and workers never end: so the thread count grows with
 * the first 128 sessions, then stays put. That is a pool, not a leak; up to 128 clients
 * are served at once, more wait in the pool's queue.
 *
 * Usage: java -cp BUILD OkFixedPool PORT [ok|echo]
 */
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

public final class OkFixedPool {
    static final int BACKLOG = 128;
    static final int MSG_MAX = 1024; // ok profile: one read of up to 1024 bytes per message
    static final int ECHO_CHUNK = 65536; // echo profile: read size
    static final byte[] REPLY = "OK!!!".getBytes(StandardCharsets.US_ASCII);
    static final int POOL_SIZE = 128;

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 2 || (args.length == 2 && !args[1].matches("ok|echo"))) {
            System.err.println("usage: java OkFixedPool PORT [ok|echo]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        boolean echo = args.length == 2 && args[1].equals("echo");
        ServerSocket listener = new ServerSocket();
        listener.setReuseAddress(true);
        listener.bind(new InetSocketAddress("0.0.0.0", port), BACKLOG);
        ExecutorService pool = Executors.newFixedThreadPool(POOL_SIZE);
        System.err.println("listening on 0.0.0.0:" + listener.getLocalPort());
        while (true) {
            Socket conn;
            try {
                conn = listener.accept();
            } catch (IOException e) { // ECONNABORTED, EMFILE: report and go on accepting
                System.err.println("accept: " + e.getMessage());
                continue;
            }
            pool.execute(() -> session(conn, echo));
        }
    }

    /** One whole session; the socket is closed when it ends, however it ends. */
    static void session(Socket conn, boolean echo) {
        try (conn) {
            if (echo) {
                serveEcho(conn);
            } else {
                serveOk(conn);
            }
        } catch (IOException e) { // a reset, or a write to a client that left: this session only
        }
    }

    /** ok profile: one read per message, reply OK!!!, end on exit or EOF. */
    static void serveOk(Socket conn) throws IOException {
        InputStream in = conn.getInputStream();
        OutputStream out = conn.getOutputStream();
        byte[] buf = new byte[MSG_MAX];
        int n;
        while ((n = in.read(buf)) > 0) { // -1: the client closed its side
            out.write(REPLY);
            if (isExit(Arrays.copyOf(buf, n))) {
                return;
            }
        }
    }

    /** echo profile: send back every byte in order until EOF. */
    static void serveEcho(Socket conn) throws IOException {
        InputStream in = conn.getInputStream();
        OutputStream out = conn.getOutputStream();
        byte[] buf = new byte[ECHO_CHUNK];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n); // blocks until every byte is written
        }
    }

    /** `exit`, tolerating a trailing "\n" or "\r\n" from line-oriented clients. */
    static boolean isExit(byte[] msg) {
        String text = new String(msg, StandardCharsets.ISO_8859_1);
        return text.equals("exit") || text.equals("exit\n") || text.equals("exit\r\n");
    }
}
