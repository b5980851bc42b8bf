package org.hippograph.neo4j;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.graphdb.QueryExecutionException;
import org.neo4j.server.CommunityBootstrapper;

/**
 * Starts Neo4j Community (the server distribution's own bootstrapper: Bolt, the HTTP
 * server and Neo4j Browser at /browser) on loopback, with auth on, and runs until SIGTERM
 * or SIGINT.
 *
 * <p>Environment (defaults in brackets): NEO4J_DATA_DIR [.neo4j] holds the database,
 * logs and run files and survives restarts; NEO4J_PASSWORD [hippograph] becomes the
 * password of user neo4j at every start (at least 8 characters); NEO4J_BOLT_PORT [7687];
 * NEO4J_HTTP_PORT [7474]; NEO4J_PAGECACHE [256m]. The heap is the JVM's (-Xmx, set by
 * the Makefile).
 *
 * <p>Once Bolt accepts connections it prints exactly one line
 * {@code NEO4J_URI=bolt://127.0.0.1:PORT} on standard output, which scripts wait for.
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        Path home = Path.of(env("NEO4J_DATA_DIR", ".neo4j")).toAbsolutePath().normalize();
        String password = env("NEO4J_PASSWORD", "hippograph");
        int boltPort = port("NEO4J_BOLT_PORT", 7687);
        int httpPort = port("NEO4J_HTTP_PORT", 7474);
        if (password.length() < 8) {
            fail("NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)");
        }
        Files.createDirectories(home);

        Map<String, String> config = new HashMap<>();
        config.put("server.directories.data", home.resolve("data").toString());
        config.put("server.directories.logs", home.resolve("logs").toString());
        config.put("server.directories.run", home.resolve("run").toString());
        config.put("server.directories.import", home.resolve("import").toString());
        config.put("server.directories.plugins", home.resolve("plugins").toString());
        config.put("server.bolt.enabled", "true");
        config.put("server.bolt.listen_address", "127.0.0.1:" + boltPort);
        config.put("server.bolt.advertised_address", "127.0.0.1:" + boltPort);
        config.put("server.bolt.tls_level", "DISABLED");
        config.put("server.http.enabled", "true");
        config.put("server.http.listen_address", "127.0.0.1:" + httpPort);
        config.put("server.http.advertised_address", "127.0.0.1:" + httpPort);
        config.put("server.https.enabled", "false");
        config.put("dbms.security.auth_enabled", "true");
        config.put("server.memory.pagecache.size", env("NEO4J_PAGECACHE", "256m"));
        // no usage reports to any outside host
        config.put("dbms.usage_report.enabled", "false");
        // and no Browser telemetry (usage and crash reports to outside hosts)
        config.put("client.allow_telemetry", "false");
        // keep a bounded amount of transaction log on disk for a long-lived dev server
        config.put("db.tx_log.rotation.retention_policy", "256M size");

        CommunityBootstrapper server = new CommunityBootstrapper();
        int status = server.start(home, home.resolve("neo4j.conf"), config, false, false);
        if (status != 0) {
            fail("Neo4j did not start (status " + status + "); see " + home.resolve("logs"));
        }
        // SIGTERM and SIGINT stop the server cleanly: the bootstrapper installs its own
        // signal handlers and shutdown hook.
        setPassword(server.getDatabaseManagementService(), password);
        waitForBolt(boltPort);
        System.out.println("NEO4J_URI=bolt://127.0.0.1:" + boltPort);
        System.out.println("Neo4j Browser: http://127.0.0.1:" + httpPort + "/browser/"
                + " (user neo4j, password from NEO4J_PASSWORD)");
        System.out.flush();
        Thread.currentThread().join();
    }

    /**
     * The password of user neo4j is NEO4J_PASSWORD, set through the system database at
     * every start (so changing the variable changes the password). Neo4j refuses to set
     * the password it already has, which is what a restart with the same value asks.
     */
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (QueryExecutionException e) {
            if (!String.valueOf(e.getMessage()).contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    private static void waitForBolt(int port) throws InterruptedException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (System.nanoTime() < deadline) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return;
            } catch (IOException notYet) {
                Thread.sleep(100);
            }
        }
        fail("Bolt did not accept connections on 127.0.0.1:" + port + " within 120 s");
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    private static int port(String name, int fallback) {
        String value = env(name, Integer.toString(fallback));
        try {
            int port = Integer.parseInt(value);
            if (port < 1 || port > 65535) {
                throw new NumberFormatException();
            }
            return port;
        } catch (NumberFormatException e) {
            fail(name + " must be a port number from 1 to 65535, not '" + value + "'");
            return -1;
        }
    }

    private static void fail(String message) {
        System.err.println("neo4j launcher: " + message);
        System.exit(2);
    }
}
