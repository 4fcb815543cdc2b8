// A Java program with a known heap, for heapdump's HPROF reader tests
// (tests/tests/java_hprof.rs): a static HashMap cache of SESSIONS sessions,
// each with a byte[] payload; a linked list of LIST_NODES nodes; a binary
// tree of TREE_DEPTH levels; DUPLICATES copies of one string value. It then
// dumps its own heap (live objects) with HotSpotDiagnosticMXBean.dumpHeap.
//
// Usage: java LeakyCache OUT.hprof [SESSIONS]

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;

import com.sun.management.HotSpotDiagnosticMXBean;

public class LeakyCache {
    static final int PAYLOAD = 1000;
    static final int LIST_NODES = 300;
    static final int TREE_DEPTH = 8; // 2^8 - 1 = 255 tree nodes
    static final int DUPLICATES = 200;

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

    static final class ListNode {
        final int value;
        ListNode next;

        ListNode(int value, ListNode next) {
            this.value = value;
            this.next = next;
        }
    }

    static final class TreeNode {
        final int depth;
        TreeNode left;
        TreeNode right;

        TreeNode(int depth) {
            this.depth = depth;
        }
    }

    /** The leak: a cache that only grows. */
    static final HashMap<Long, Session> CACHE = new HashMap<>();
    static ListNode LIST;
    static TreeNode TREE;
    static final List<String> NAMES = new ArrayList<>();

    static TreeNode tree(int depth) {
        TreeNode node = new TreeNode(depth);
        if (depth > 1) {
            node.left = tree(depth - 1);
            node.right = tree(depth - 1);
        }
        return node;
    }

    public static void main(String[] args) throws Exception {
        int sessions = args.length > 1 ? Integer.parseInt(args[1]) : 500;
        for (long id = 0; id < sessions; id++) {
            byte[] payload = new byte[PAYLOAD];
            payload[0] = (byte) id;
            CACHE.put(id, new Session(id, "user-" + id, payload));
        }
        for (int i = 0; i < LIST_NODES; i++) {
            LIST = new ListNode(i, LIST);
        }
        TREE = tree(TREE_DEPTH);
        for (int i = 0; i < DUPLICATES; i++) {
            NAMES.add(new String("duplicate-value"));
        }
        HotSpotDiagnosticMXBean bean =
                ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        bean.dumpHeap(args[0], true);
        System.out.println("dumped " + args[0]);
    }
}
