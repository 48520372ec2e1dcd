// daybreak-sim: the WhatsApp Cloud API compatible provider simulator. Thin main:
// flags and HTTP wiring are in app.cpp, the provider rules in simulator.cpp.
namespace daybreak::sim {
int sim_main(int argc, char** argv);
}

int main(int argc, char** argv) { return daybreak::sim::sim_main(argc, argv); }
