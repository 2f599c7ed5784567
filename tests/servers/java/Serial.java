/*
 * Serial.java - DEFECT: serves one client at a time.
 *
 * An iterative server: the main thread accepts a connection and serves it to the end before
 * calling accept() again, so one idle client blocks everybody else. Not in the zoo's matrix
 * (the C, Python and Go serial servers are); it shows that a failure names the Java line
 * where the server waits (conformance/harness/stacks.py, jcmd Thread.print).
 *
 * Usage: java -cp BUILD Serial PORT [ok|echo]
 */
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public final class Serial {
    static final int BACKLOG = 128;
    static final int MSG_MAX = 1024; // ok profile: one read of up to 1024 bytes per message
    static final byte[] REPLY = "OK!!!".getBytes(StandardCharsets.US_ASCII);

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 2 || (args.length == 2 && !args[1].matches("ok|echo"))) {
            System.err.println("usage: java Serial PORT [ok|echo]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        boolean echo = args.length == 2 && args[1].equals("echo");
        ServerSocket listener = new ServerSocket();
        listener.setReuseAddress(true);
        listener.bind(new InetSocketAddress("0.0.0.0", port), BACKLOG);
        System.err.println("listening on 0.0.0.0:" + listener.getLocalPort());
        while (true) {
            try (Socket conn = listener.accept()) {
                serve(conn, echo); // DEFECT: the next accept() waits for this session
            } catch (IOException e) { // a reset, or a write to a client that left
                System.err.println("session: " + e.getMessage());
            }
        }
    }

    /** One whole session: one read per message (ok) or every byte back (echo), until EOF. */
    static void serve(Socket conn, boolean echo) throws IOException {
        InputStream in = conn.getInputStream();
        OutputStream out = conn.getOutputStream();
        byte[] buf = new byte[MSG_MAX];
        int n;
        while ((n = in.read(buf)) > 0) { // -1: the client closed its side
            if (echo) {
                out.write(buf, 0, n);
            } else {
                out.write(REPLY);
                String text = new String(Arrays.copyOf(buf, n), StandardCharsets.ISO_8859_1);
                if (text.equals("exit") || text.equals("exit\n") || text.equals("exit\r\n")) {
                    return;
                }
            }
        }
    }
}
