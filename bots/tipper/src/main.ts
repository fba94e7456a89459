import { tipper } from './index';

tipper.run();
