// A big Java heap for heapdump's HPROF bench (tests/benches/java_hprof.rs):
// a static HashMap cache of sessions (Long key, HashMap$Node, Session, a
// String user name with its byte[], a byte[] payload: 6 objects each), a
// linked list and a binary tree, about OBJECTS objects in all. Dumps its
// own heap (live objects) with HotSpotDiagnosticMXBean.dumpHeap.
//
// Usage: java -Xmx2g BigHeap OUT.hprof OBJECTS

import java.lang.management.ManagementFactory;
import java.util.HashMap;

import com.sun.management.HotSpotDiagnosticMXBean;

public class BigHeap {
    static final class Session {
        final long id;
        final String user;
        final byte[] payload;

        Session(long id, String user, byte[] payload) {
            this.id = id;
            this.user = user;
            this.payload = payload;
        }
    }

    static final class Node {
        Node left;
        Node right;
        int value;
    }

    static final HashMap<Long, Session> CACHE = new HashMap<>();
    static Node LIST;
    static Node TREE;

    static Node tree(int depth) {
        Node node = new Node();
        node.value = depth;
        if (depth > 1) {
            node.left = tree(depth - 1);
            node.right = tree(depth - 1);
        }
        return node;
    }

    public static void main(String[] args) throws Exception {
        long objects = Long.parseLong(args[1]);
        long sessions = objects * 8 / 10 / 6;
        for (long id = 0; id < sessions; id++) {
            byte[] payload = new byte[16 + (int) (id % 64)];
            payload[0] = (byte) id;
            CACHE.put(id, new Session(id, "user-" + id, payload));
        }
        long nodes = objects / 10;
        for (long i = 0; i < nodes; i++) {
            Node node = new Node();
            node.value = (int) i;
            node.left = LIST;
            LIST = node;
        }
        int depth = 1;
        while ((1L << (depth + 1)) - 1 <= nodes) {
            depth++;
        }
        TREE = tree(depth);
        HotSpotDiagnosticMXBean bean =
                ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        bean.dumpHeap(args[0], true);
        System.out.println("dumped " + args[0]);
    }
}
