/*
 * ThreadCap2.java - DEFECT: at most two sessions at a time.
 *
 * Thread per connection like OkThread.java, but the accept loop takes a permit of a two-permit
 * java.util.concurrent.Semaphore before each accept() and a session gives it back when it
 * ends, so a third client waits until one of the first two leaves (as c/thread_cap2.c).
 *
 * Usage: java -cp BUILD ThreadCap2 PORT [ok|echo]
 */
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.Semaphore;

public final class ThreadCap2 {
    static final int BACKLOG = 128;
    static final int MSG_MAX = 1024; // ok profile: one read of up to 1024 bytes per message
    static final int ECHO_CHUNK = 65536; // echo profile: read size
    static final byte[] REPLY = "OK!!!".getBytes(StandardCharsets.US_ASCII);
    static final Semaphore SLOTS = new Semaphore(2); // DEFECT: an arbitrary cap on concurrent sessions

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 2 || (args.length == 2 && !args[1].matches("ok|echo"))) {
            System.err.println("usage: java ThreadCap2 PORT [ok|echo]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        boolean echo = args.length == 2 && args[1].equals("echo");
        ServerSocket listener = new ServerSocket();
        listener.setReuseAddress(true);
        listener.bind(new InetSocketAddress("0.0.0.0", port), BACKLOG);
        System.err.println("listening on 0.0.0.0:" + listener.getLocalPort());
        while (true) {
            SLOTS.acquireUninterruptibly(); // WAITS here for a free slot
            Socket conn;
            try {
                conn = listener.accept();
            } catch (IOException e) { // ECONNABORTED, EMFILE: report and go on accepting
                System.err.println("accept: " + e.getMessage());
                SLOTS.release();
                continue;
            }
            new Thread(() -> session(conn, echo)).start();
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
        } finally {
            SLOTS.release();
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
