// A Java program with a known heap, for heapdump's HPROF reader tests
// (tests/tests/java_hprof.rs): a static HashMap cache of SESSIONS sessions,
// each with a byte[] payload; a linked list of LIST_NODES nodes; a binary
// tree of TREE_DEPTH levels; DUPLICATES copies of one string value (sharing
// one byte[]), COPIES copies of a string built at run time (each with its
// own byte[]); HOLDERS holders of empty collections and SPARSE of sparse
// ones. It then dumps its own heap (live objects) with
// HotSpotDiagnosticMXBean.dumpHeap, and prints what heapdump's waste report
// should find, counted here ("count NAME N" lines).
//
// Usage: java LeakyCache OUT.hprof [SESSIONS]

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import com.sun.management.HotSpotDiagnosticMXBean;

public class LeakyCache {
    static final int PAYLOAD = 1000;
    static final int LIST_NODES = 300;
    static final int TREE_DEPTH = 8; // 2^8 - 1 = 255 tree nodes
    static final int DUPLICATES = 200;
    static final int COPIES = 150;
    static final int HOLDERS = 40;
    static final int SPARSE = 12;

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

    /** Collections as a program leaves them: empty, or mostly empty. */
    static final class Holder {
        HashMap<String, String> map;
        ArrayList<String> list;

        Holder(HashMap<String, String> map, ArrayList<String> list) {
            this.map = map;
            this.list = list;
        }
    }

    /** The leak: a cache that only grows. */
    static final HashMap<Long, Session> CACHE = new HashMap<>();
    static ListNode LIST;
    static TreeNode TREE;
    static final List<String> NAMES = new ArrayList<>();
    static final String[] WASTED = new String[COPIES];
    static final Holder[] EMPTY = new Holder[HOLDERS];
    static final Holder[] SPARSE_HOLDERS = new Holder[SPARSE];

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
        // Copies of a value built at run time (not interned), each with
        // its own byte[].
        String value = new StringBuilder("wasted-").append(COPIES).toString();
        for (int i = 0; i < COPIES; i++) {
            WASTED[i] = new String(value.toCharArray());
        }
        for (int i = 0; i < HOLDERS; i++) {
            EMPTY[i] = new Holder(new HashMap<>(), new ArrayList<>());
        }
        for (int i = 0; i < SPARSE; i++) {
            HashMap<String, String> map = new HashMap<>(1024);
            map.put("key-" + i, "value");
            ArrayList<String> list = new ArrayList<>(200);
            list.add("a");
            list.add("b");
            SPARSE_HOLDERS[i] = new Holder(map, list);
        }
        // What the waste report should find, counted from the live data.
        int copies = 0;
        for (String copy : WASTED) {
            if (copy.equals(value)) {
                copies++;
            }
        }
        System.out.println("count copies " + copies);
        System.out.println("count copies-value " + value);
        int duplicates = 0;
        for (String name : NAMES) {
            if (name.equals("duplicate-value")) {
                duplicates++;
            }
        }
        System.out.println("count duplicates " + duplicates);
        // Payloads with equal contents: groups of two or more, and the
        // copies beyond the first of each.
        HashMap<String, Integer> payloads = new HashMap<>();
        for (Session session : CACHE.values()) {
            payloads.merge(Arrays.toString(session.payload), 1, Integer::sum);
        }
        int payloadGroups = 0;
        int payloadExtra = 0;
        for (int n : payloads.values()) {
            if (n > 1) {
                payloadGroups++;
                payloadExtra += n - 1;
            }
        }
        System.out.println("count payload-groups " + payloadGroups);
        System.out.println("count payload-extra " + payloadExtra);
        int emptyMaps = 0;
        int emptyLists = 0;
        for (Holder holder : EMPTY) {
            emptyMaps += holder.map.isEmpty() ? 1 : 0;
            emptyLists += holder.list.isEmpty() ? 1 : 0;
        }
        System.out.println("count empty-maps " + emptyMaps);
        System.out.println("count empty-lists " + emptyLists);
        Set<Holder> sparse = new HashSet<>(Arrays.asList(SPARSE_HOLDERS));
        System.out.println("count sparse-holders " + sparse.size());
        // Not held from this frame when the heap is dumped.
        sparse = null;
        payloads = null;
        value = null;
        HotSpotDiagnosticMXBean bean =
                ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        bean.dumpHeap(args[0], true);
        System.out.println("dumped " + args[0]);
    }
}
