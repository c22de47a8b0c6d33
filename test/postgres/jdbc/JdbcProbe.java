// A JDBC client for the PostgreSQL path's tests (test code): connects with the URL, user and password given as
// arguments, runs each further argument as a statement, and prints one line per statement: "ok <rows as a|b,c|d>"
// or "error <SQLSTATE> <message>". The connection is kept across statements, so a refusal must leave it usable.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

public class JdbcProbe {
  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
      for (int i = 3; i < args.length; i++) {
        // Run each statement several times so that the driver switches to named server-side statements too.
        String line = null;
        for (int round = 0; round < 6; round++) line = run(c, args[i]);
        System.out.println(line);
      }
    } catch (SQLException e) {
      System.out.println("connect-error " + e.getSQLState() + " " + e.getMessage());
    }
  }

  static String run(Connection c, String sql) {
    try (PreparedStatement s = c.prepareStatement(sql)) {
      if (!s.execute()) return "ok";
      StringBuilder out = new StringBuilder("ok ");
      try (ResultSet rs = s.getResultSet()) {
        int n = rs.getMetaData().getColumnCount();
        boolean first = true;
        while (rs.next()) {
          if (!first) out.append('|');
          first = false;
          for (int k = 1; k <= n; k++) {
            if (k > 1) out.append(',');
            out.append(rs.getString(k));
          }
        }
      }
      return out.toString();
    } catch (SQLException e) {
      return "error " + e.getSQLState() + " " + e.getMessage().split("\n")[0];
    }
  }
}
