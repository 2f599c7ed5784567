/*
 * EofSpin.java - DEFECT: read()'s -1 (the end of the stream) taken for "nothing yet".
 *
 * Thread per connection like OkThread.java, but the ok session waits for each message in a
 * loop that reads again while read() returns nothing: InputStream.read() never returns 0 on a
 * blocking socket, and its -1 means the client closed, so once a client leaves without `exit`
 * its session thread calls read() for ever, burning a CPU, and never closes the connection.
 * This is the Java form of sigpipe_eof's unchecked EOF: the JVM ignores SIGPIPE (a write to
 * a departed client throws), so the same mistake spins instead of killing the server. (In
 * the echo profile the loop is the correct one.) Not in the zoo's matrix; it shows that a
 * failure names the Java line where a thread spins (tests/harness/test_stacks.py).
 *
 * Usage: java -cp BUILD EofSpin PORT [ok|echo]
 */
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public final class EofSpin {
    static final int BACKLOG = 128;
    static final int MSG_MAX = 1024; // ok profile: one read of up to 1024 bytes per message
    static final int ECHO_CHUNK = 65536; // echo profile: read size
    static final byte[] REPLY = "OK!!!".getBytes(StandardCharsets.US_ASCII);

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 2 || (args.length == 2 && !args[1].matches("ok|echo"))) {
            System.err.println("usage: java EofSpin PORT [ok|echo]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        boolean echo = args.length == 2 && args[1].equals("echo");
        ServerSocket listener = new ServerSocket();
        listener.setReuseAddress(true);
        listener.bind(new InetSocketAddress("0.0.0.0", port), BACKLOG);
        System.err.println("listening on 0.0.0.0:" + listener.getLocalPort());
        while (true) {
            Socket conn;
            try {
                conn = listener.accept();
            } catch (IOException e) { // ECONNABORTED, EMFILE: report and go on accepting
                System.err.println("accept: " + e.getMessage());
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
        }
    }

    /** ok profile: one read per message, reply OK!!!, end on exit (and never at EOF). */
    static void serveOk(Socket conn) throws IOException {
        InputStream in = conn.getInputStream();
        OutputStream out = conn.getOutputStream();
        byte[] buf = new byte[MSG_MAX];
        while (true) {
            int n;
            while ((n = in.read(buf)) <= 0) { // DEFECT: at -1 (EOF) this spins for ever
            }
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
