// ZooKeeper's own Java client keeps its watches across a reconnect by re-sending them
// with setWatches/setWatches2. Driven by tests/server/zk/test_java_clients.py over
// stdin/stdout: it prints "ready" once its watches are set, then one line per event.
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

public class WatchesAcrossReconnect {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        Watcher session = event -> {
            System.out.println("session " + event.getState());
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        };
        ZooKeeper zk = new ZooKeeper(args[0], 10000, session);
        if (!connected.await(10, TimeUnit.SECONDS)) {
            System.out.println("error: not connected");
            System.exit(1);
        }
        Watcher watch = event -> System.out.println("watch " + event.getType() + " " + event.getPath());
        zk.getData("/jdata", watch, null);
        zk.getChildren("/jdata", watch);
        zk.exists("/jnew", watch);
        zk.addWatch("/jtree", watch, AddWatchMode.PERSISTENT_RECURSIVE);
        System.out.println("ready session=0x" + Long.toHexString(zk.getSessionId()));
        System.in.read();  // the test closes stdin when it is done
        zk.close();
    }
}
